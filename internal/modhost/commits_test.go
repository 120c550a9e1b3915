package modhost_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/store"
)

// The commit counters on /metrics follow the module's DB: each committed
// transaction counts, a rolled-back one does not.
func TestCommitCollectors(t *testing.T) {
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, "shop", filepath.Join(t.TempDir(), "shop.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	reg := prometheus.NewRegistry()
	for _, c := range modhost.CommitCollectors(db) {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := store.InTx(ctx, db, func(*store.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	_ = store.InTx(ctx, db, func(*store.Tx) error { return context.Canceled }) // rolled back
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			got[f.GetName()] = fmt.Sprintf("%s=%s %v", m.GetLabel()[0].GetName(), m.GetLabel()[0].GetValue(), m.GetCounter().GetValue())
		}
	}
	want := map[string]string{
		"agora_db_commits_total":                "module=shop 2",
		"agora_db_transactions_committed_total": "module=shop 2",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}
