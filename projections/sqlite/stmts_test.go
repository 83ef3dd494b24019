package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/salesledger/ledger/projections/sqlite"
)

// TestReadStatementsAreBounded runs more distinct read statements than are kept: each still answers
// right, and the kept ones stop at the bound (the others are prepared for their call and closed).
func TestReadStatementsAreBounded(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for i := range sqlite.MaxReadStmts + 50 {
		for range 2 { // the second run of a kept statement reuses it
			n, kept, err := sqlite.QueryInt(ctx, st, fmt.Sprintf("SELECT ? + %d", i), 1)
			if err != nil {
				t.Fatal(err)
			}
			if n != i+1 {
				t.Fatalf("statement %d answered %d, want %d", i, n, i+1)
			}
			if kept > sqlite.MaxReadStmts {
				t.Fatalf("%d statements kept, bound %d", kept, sqlite.MaxReadStmts)
			}
		}
	}
	if _, kept, _ := sqlite.QueryInt(ctx, st, "SELECT 1"); kept != sqlite.MaxReadStmts {
		t.Fatalf("%d statements kept after %d distinct ones, want the bound %d", kept, sqlite.MaxReadStmts+50, sqlite.MaxReadStmts)
	}
}
