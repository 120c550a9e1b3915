package telemetry_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agora-commerce/agora/internal/telemetry"
)

var thingsDesc = prometheus.NewDesc("test_things", "Things by state.", []string{"state"}, nil)

func TestCountsReportsEveryLabelWithZeros(t *testing.T) {
	c := telemetry.Counts(thingsDesc, []string{"open", "closed", "lost"}, func(ctx context.Context) (map[string]int64, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("read without a deadline")
		}
		return map[string]int64{"open": 3, "odd": 1}, nil
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{"open": 3, "closed": 0, "lost": 0, "odd": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("test_things by state (-want +got):\n%s", diff)
	}
}

func TestCountsReportsAFailedReadAsInvalid(t *testing.T) {
	c := telemetry.Counts(thingsDesc, []string{"open"}, func(context.Context) (map[string]int64, error) {
		return nil, errors.New("the database is down")
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "the database is down") {
		t.Fatalf("Gather = %v; want the read's error", err)
	}
}
