package sqlite

import "context"

// ListQuery is listQuery, for the benchmark's EXPLAIN QUERY PLAN check.
func ListQuery(ctx context.Context, s *Store, f SaleFilter) (string, []any, error) {
	return s.listQuery(ctx, f)
}
