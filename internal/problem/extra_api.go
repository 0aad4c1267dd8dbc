package problem

// Codes of the HTTP API and the command-line client. They extend the
// catalogue in problem.go; like those, they are never reused or renumbered.
const (
	// BadRequest means an API request is malformed: an unknown field, a
	// bad query parameter, an unknown route. Fix the request as the message
	// says; docs/API.md lists every route and body.
	BadRequest Code = "DW2100"
	// EngineUnreachable means the CLI could not connect to the engine's
	// API. Start `dualwrite serve` or point --server (DUALWRITE_SERVER) at it.
	EngineUnreachable Code = "DW2101"
	// BadResponse means the server answered something that is not the
	// dualwrite API. Check that --server points at a dualwrite engine.
	BadResponse Code = "DW2102"
	// Internal is an unexpected failure without a code of its own. The
	// engine log has the detail; report it as a bug.
	Internal Code = "DW9000"
)
