package queue

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkAppendEmbedded measures Append on the embedded server with the
// production sync policy (fsync before every acknowledgement) and reports
// the ratio to a baseline run without fsync in the same process.
func BenchmarkAppendEmbedded(b *testing.B) {
	ctx := context.Background()
	openBench := func(noFsync bool) *Queue {
		q, err := Open(ctx, Options{Dir: filepath.Join(b.TempDir(), "queue"), noFsync: noFsync})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { q.Close() })
		return q
	}

	const baselineN = 500
	base := openBench(true)
	start := time.Now()
	for lsn := uint64(1); lsn <= baselineN; lsn++ {
		if _, err := base.Append(ctx, entry("m", "erp", lsn)); err != nil {
			b.Fatal(err)
		}
	}
	basePerOp := time.Since(start) / baselineN

	q := openBench(false)
	lsn := uint64(0)
	for b.Loop() {
		lsn++
		if _, err := q.Append(ctx, entry("m", "erp", lsn)); err != nil {
			b.Fatal(err)
		}
	}
	perOp := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(basePerOp.Nanoseconds()), "baseline-ns/op")
	b.ReportMetric(float64(perOp)/float64(basePerOp), "x-baseline")
}

// BenchmarkReadEmbedded measures a replay batch of 500 entries.
func BenchmarkReadEmbedded(b *testing.B) {
	ctx := context.Background()
	q, err := Open(ctx, Options{Dir: filepath.Join(b.TempDir(), "queue"), noFsync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { q.Close() })
	const n = 500
	for lsn := uint64(1); lsn <= n; lsn++ {
		if _, err := q.Append(ctx, entry("m", "erp", lsn)); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		got, err := q.Read(ctx, "m", 0, n)
		if err != nil || len(got) != n {
			b.Fatalf("read: %d entries, %v", len(got), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
}
