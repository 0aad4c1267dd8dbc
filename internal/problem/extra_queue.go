package problem

// Durable queue codes, added by internal/queue. They belong in
// docs/ERRORS.md next to DW2020 (the lead adds the rows).
const (
	// QueueUnavailable: the durable queue (embedded or external NATS
	// JetStream) cannot be opened or does not answer.
	QueueUnavailable Code = "DW2021"
	// QueueEntryTooLarge: one map's share of a source transaction is larger
	// than the queue's maximum message size.
	QueueEntryTooLarge Code = "DW2022"
)
