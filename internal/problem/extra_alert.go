package problem

// Codes of alerts and notifications (internal/alert). Listed in
// docs/ERRORS.md next to DW2022.
const (
	// AlertFired: an alert rule's condition holds for a map (too many
	// errors, lag, queue age, retained log, a stalled stream, a failed
	// initial sync). The message names the rule and the map page; act on
	// the condition it describes.
	AlertFired Code = "DW2030"
	// NotifyFailed: a notification channel (webhook or e-mail) could not
	// deliver an alert. Check the channel's address and credentials under
	// notify: in the configuration; the alert itself is in the activity log.
	NotifyFailed Code = "DW2031"
	// AlertActionFailed: an alert rule's action (pause or stop) could not be
	// taken, e.g. because the map's status no longer allows it.
	AlertActionFailed Code = "DW2032"
)
