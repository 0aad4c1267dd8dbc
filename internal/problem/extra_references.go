package problem

// Record identity and references (issue: correct on real ERP and CRM data).
const (
	// LookupCrossCompany: a lookup into a company-keyed map could match
	// rows of several companies (dual-write's DIPV1002 cross-company
	// conflict). Fix: resolve it within the row's company (a company key
	// column on both maps), or reference a column unique across companies.
	LookupCrossCompany Code = "DW1015"
	// WaitingForReference: the change references a record that has not
	// reached the target yet (filtered out, never created, or parked). The
	// key waits and retries by itself when that record arrives.
	WaitingForReference Code = "DW3006"
)
