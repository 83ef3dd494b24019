package sqlite

import "context"

// ListQuery is listQuery, for the benchmark's EXPLAIN QUERY PLAN check.
func ListQuery(ctx context.Context, s *Store, f SaleFilter) (string, []any, error) {
	return s.listQuery(ctx, f)
}

// ListCustomersQuery is listCustomersQuery, for the customers benchmark's plan log.
func ListCustomersQuery(f CustomerFilter) (string, []any) { return listCustomersQuery(f) }

// QueryInt runs a one-integer read statement through the kept read statements (readStmt), and tells
// how many statements are kept.
func QueryInt(ctx context.Context, s *Store, q string, args ...any) (n int, kept int, err error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	if rows.Next() {
		err = rows.Scan(&n)
	}
	if err == nil {
		err = rows.Err()
	}
	return n, int(s.nRead.Load()), err
}

// MaxReadStmts is maxReadStmts.
const MaxReadStmts = maxReadStmts
