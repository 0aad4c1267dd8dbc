package problem

// Codes of authentication, request origin checks and the serving address.
// Listed in docs/ERRORS.md; like the others, never reused or renumbered.
const (
	// Unauthenticated: the request carries no valid token or session.
	// Log in at /login, or send `Authorization: Bearer <token>`; the CLI
	// finds the token in engine.data_dir or takes --token/DUALWRITE_TOKEN.
	Unauthenticated Code = "DW2300"
	// Forbidden: the token's role may not do this (a viewer token cannot
	// change state). Use the operator token.
	Forbidden Code = "DW2301"
	// CrossOrigin: a state-changing request came from another origin, or
	// came without an Origin header and without a CSRF token. Send it from
	// the workspace itself, or with the bearer token.
	CrossOrigin Code = "DW2302"
	// TokenFile: an access token file in engine.data_dir cannot be read or
	// created, or other users can read it. Fix its owner and mode (0600).
	TokenFile Code = "DW2303"
	// ListenInsecure: engine.listen is not a loopback address and TLS is
	// not configured. Set engine.tls_cert and engine.tls_key, listen on
	// 127.0.0.1, or set engine.insecure_listen: true knowingly.
	ListenInsecure Code = "DW2310"
	// PortInUse: another process listens on engine.listen's port. Stop it
	// or choose another port.
	PortInUse Code = "DW2311"
)
