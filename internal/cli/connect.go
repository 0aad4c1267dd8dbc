package cli

import (
	"errors"
	"flag"
	iofs "io/fs"
	"net"
	"os"

	"github.com/dualwrite/dualwrite/internal/auth"
	"github.com/dualwrite/dualwrite/internal/config"
	"github.com/dualwrite/dualwrite/internal/problem"
)

// DefaultConfig is the configuration file the maps commands read, when it
// exists in the working directory, to find the engine and its token.
const DefaultConfig = "dualwrite.yaml"

// connectFlags adds --server, --token and --config to a maps command and
// returns the client constructor for their values.
//
// The token is, in order: --token, $DUALWRITE_TOKEN, or the strongest
// token file in the data_dir of the configuration (--config,
// $DUALWRITE_CONFIG, else ./dualwrite.yaml when it exists): on the
// engine's machine the CLI finds it by itself. The server is --server,
// $DUALWRITE_SERVER, the configuration's engine.listen, else
// DefaultServer.
func (r *runner) connectFlags(fs *flag.FlagSet) func() (*client, error) {
	server := fs.String("server", r.env.Server, "the engine's API `URL` (env DUALWRITE_SERVER; default from --config's engine.listen, else "+DefaultServer+")")
	token := fs.String("token", r.env.Token, "the access `TOKEN` (env DUALWRITE_TOKEN; default read from --config's data_dir)")
	cfgPath := fs.String("config", r.env.Config, "the engine's configuration `FILE`, to find its address and token (env DUALWRITE_CONFIG; default ./"+DefaultConfig+" if present)")
	return func() (*client, error) {
		srv, tok := *server, *token
		path := *cfgPath
		if path == "" {
			if _, err := os.Stat(DefaultConfig); err == nil {
				path = DefaultConfig
			}
		}
		if path != "" && (srv == "" || tok == "") {
			cfg, err := config.Load(path)
			if err != nil {
				return nil, problem.Wrap(problem.CodeOf(err), err, "read %s to find the engine and its token", path)
			}
			if srv == "" {
				srv = serverOf(cfg.Engine)
			}
			if tok == "" {
				t, _, err := auth.ReadToken(cfg.Engine.DataDir)
				switch {
				case err == nil:
					tok = t
				case problem.CodeOf(err) == problem.TokenFile && errors.Is(err, iofs.ErrPermission):
					return nil, problem.Wrap(problem.TokenFile, err, "cannot read the token in %s: run as the engine's user, or pass --token", cfg.Engine.DataDir)
				case problem.CodeOf(err) == problem.TokenFile:
					return nil, err
				}
			}
		}
		if srv == "" {
			srv = DefaultServer
		}
		c, err := newClient(srv)
		if err != nil {
			return nil, err
		}
		c.token = tok
		return c, nil
	}
}

// serverOf is the URL at which this machine reaches engine.listen.
func serverOf(e config.Engine) string {
	host, port, err := net.SplitHostPort(e.Listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "http://"
	if e.TLS() {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, port)
}
