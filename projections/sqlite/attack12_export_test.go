package sqlite

import "context"

// QueryAllInts runs a read statement through s.query and reads every row's integer, after query has
// returned (and, beyond maxReadStmts, closed the statement it prepared for the call).
func QueryAllInts(ctx context.Context, s *Store, q string, args ...any) ([]int, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
