package sqlite

import "context"

// ListQuery is listQuery, for the benchmark's EXPLAIN QUERY PLAN check.
func ListQuery(ctx context.Context, s *Store, f SaleFilter) (string, []any, error) {
	return s.listQuery(ctx, f)
}

// ListCustomersQuery is listCustomersQuery, for the customers benchmark's plan log.
func ListCustomersQuery(f CustomerFilter) (string, []any) { return listCustomersQuery(f) }
