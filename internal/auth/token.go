package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// Role is what a token may do.
type Role string

const (
	// Viewer may read: safe methods (GET, HEAD) only.
	Viewer Role = "viewer"
	// Operator may read and act: run, pause, stop, retry, discard, edit.
	Operator Role = "operator"
)

// Roles lists the roles, strongest first: the CLI picks the first token it
// can read.
var Roles = []Role{Operator, Viewer}

// tokenPrefix starts every token, so a token found in a log or a shell
// history says what it is and which role it carries.
var tokenPrefix = map[Role]string{Operator: "dwo_", Viewer: "dwv_"}

// Tokens holds one token per role.
type Tokens struct {
	Operator string
	Viewer   string
}

// Of returns the token of role r.
func (t Tokens) Of(r Role) string {
	if r == Operator {
		return t.Operator
	}
	return t.Viewer
}

// TokenPath is the file holding role r's token in dataDir.
func TokenPath(dataDir string, r Role) string {
	return filepath.Join(dataDir, string(r)+".token")
}

// LoadOrCreate reads the two tokens from dataDir, creating each missing
// one (random, mode 0600) and dataDir itself (mode 0700) if needed. A token
// file that group or others can read is refused with DW2303: the token
// would no longer be a secret.
func LoadOrCreate(dataDir string) (Tokens, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return Tokens{}, problem.Wrap(problem.TokenFile, err, "create data directory %s for the access tokens", dataDir)
	}
	var t Tokens
	for _, r := range Roles {
		tok, err := readToken(TokenPath(dataDir, r), r)
		if errors.Is(err, fs.ErrNotExist) {
			tok, err = createToken(TokenPath(dataDir, r), r)
		}
		if err != nil {
			return Tokens{}, err
		}
		if r == Operator {
			t.Operator = tok
		} else {
			t.Viewer = tok
		}
	}
	return t, nil
}

// ReadToken returns the strongest token of dataDir the caller can read,
// and its role. It never creates anything: it is how a client on the same
// machine finds its token. A missing token is reported as DW2300.
func ReadToken(dataDir string) (string, Role, error) {
	var firstErr error
	for _, r := range Roles {
		tok, err := readToken(TokenPath(dataDir, r), r)
		if err == nil {
			return tok, r, nil
		}
		if firstErr == nil && !errors.Is(err, fs.ErrNotExist) {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", "", firstErr
	}
	return "", "", problem.New(problem.Unauthenticated,
		"no access token in %s: start `dualwrite serve` once to create it, or pass --token / set DUALWRITE_TOKEN", dataDir)
}

func readToken(path string, r Role) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", problem.Wrap(problem.TokenFile, err, "read access token %s", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", problem.New(problem.TokenFile,
			"access token %s has mode %04o: other users can read it; run `chmod 600 %s`", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", problem.Wrap(problem.TokenFile, err, "read access token %s", path)
	}
	tok := strings.TrimSpace(string(b))
	if !strings.HasPrefix(tok, tokenPrefix[r]) || len(tok) < len(tokenPrefix[r])+32 {
		return "", problem.New(problem.TokenFile,
			"access token %s is not a %s token; delete the file and restart `dualwrite serve` to create a new one", path, r)
	}
	return tok, nil
}

func createToken(path string, r Role) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate %s token: %w", r, err)
	}
	tok := tokenPrefix[r] + hex.EncodeToString(b[:])
	// O_EXCL: two engines starting on one data_dir must not overwrite each
	// other's token after one of them has handed it out.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readToken(path, r)
		}
		return "", problem.Wrap(problem.TokenFile, err, "create access token %s", path)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", problem.Wrap(problem.TokenFile, err, "write access token %s", path)
	}
	if err := f.Close(); err != nil {
		return "", problem.Wrap(problem.TokenFile, err, "write access token %s", path)
	}
	return tok, nil
}

// fingerprint names a token without revealing it: the first 8 hex digits
// of its SHA-256. The activity log records it, so a rotated token shows.
func fingerprint(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:4])
}
