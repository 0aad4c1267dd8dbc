package connector

// MinBulkRun is the shortest run of same-shaped writes that drivers try to
// write as one set-based statement.
const MinBulkRun = 16

// WriteRuns writes n writes of a batch in order, run by run. runEnd(i)
// returns the end of the run that starts at i (i+1 for a write that is not
// part of one). A run of at least MinBulkRun writes is tried with bulk,
// which reports whether it wrote the run; a failed attempt must leave the
// transaction as it was (a savepoint). When it fails and split is set,
// the run is split in halves, recursively, so that a bad row costs a few
// bulk attempts and a short stretch of single writes, and the writes still
// land in batch order. Otherwise, and for short runs, one writes each
// write on its own. The first error of bulk or one ends the batch.
func WriteRuns(n int, runEnd func(i int) int, bulk func(lo, hi int) (bool, error), one func(i int) error, split bool) error {
	var write func(lo, hi int) error
	write = func(lo, hi int) error {
		if hi-lo >= MinBulkRun {
			ok, err := bulk(lo, hi)
			if err != nil || ok {
				return err
			}
			if split && hi-lo >= 2*MinBulkRun {
				mid := (lo + hi) / 2
				if err := write(lo, mid); err != nil {
					return err
				}
				return write(mid, hi)
			}
		}
		for k := lo; k < hi; k++ {
			if err := one(k); err != nil {
				return err
			}
		}
		return nil
	}
	for i := 0; i < n; {
		j := runEnd(i)
		if err := write(i, j); err != nil {
			return err
		}
		i = j
	}
	return nil
}
