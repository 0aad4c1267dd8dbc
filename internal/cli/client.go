package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/wire"
)

// requestTimeout bounds one API call. Actions return once the engine has
// accepted them, so no call legitimately takes longer.
const requestTimeout = 60 * time.Second

// client calls the engine's HTTP API as the "cli" actor.
type client struct {
	base  string
	token string // sent as a bearer token when set
	hc    *http.Client
}

// newClient checks the --server URL and returns a client for it.
func newClient(server string) (*client, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--server %q is not an http:// or https:// URL", server)
	}
	return &client{base: strings.TrimRight(server, "/"), hc: &http.Client{Timeout: requestTimeout}}, nil
}

func mapPath(name string, rest ...string) string {
	return "/api/v1/maps/" + url.PathEscape(name) + strings.Join(rest, "")
}

// call sends in (when not nil) as the JSON body and decodes the answer into
// out. API errors come back as *problem.Error with the server's code.
func (c *client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set(wire.ActorHeader, "cli")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", method, path, ctx.Err())
		}
		return problem.Wrap(problem.EngineUnreachable, unwrapURLError(err),
			"cannot reach the engine at %s: is `dualwrite serve` running?", c.base)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return problem.Wrap(problem.EngineUnreachable, err, "read the answer of %s", c.base)
	}
	if resp.StatusCode/100 != 2 {
		var eb wire.ErrorBody
		if json.Unmarshal(raw, &eb) != nil || eb.Error.Code == "" {
			return problem.New(problem.BadResponse,
				"%s answered %s %s with %s and no dualwrite error; check that --server points at a dualwrite engine",
				c.base, method, path, resp.Status)
		}
		pe := &problem.Error{Code: problem.Code(eb.Error.Code), Message: eb.Error.Message}
		if pe.Code == problem.Unauthenticated {
			if c.token == "" {
				pe.Message = "the engine needs an access token: pass --token, set DUALWRITE_TOKEN, or run on the engine's machine with --config FILE (the CLI then reads the token in its data_dir)"
			} else {
				pe.Message = "the engine refused the access token: it is not one of its tokens (see operator.token in the engine's data_dir)"
			}
		}
		return pe
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return problem.Wrap(problem.BadResponse, err,
			"%s answered %s %s with a body that is not the dualwrite API; check that --server points at a dualwrite engine", c.base, method, path)
	}
	return nil
}

// unwrapURLError drops *url.Error's "Get \"http://...\":" prefix; the
// message already names the server.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (c *client) maps(ctx context.Context) ([]wire.MapView, error) {
	var l wire.MapList
	err := c.call(ctx, http.MethodGet, "/api/v1/maps", nil, &l)
	return l.Maps, err
}

func (c *client) mapView(ctx context.Context, name string) (wire.MapView, error) {
	var v wire.MapView
	err := c.call(ctx, http.MethodGet, mapPath(name), nil, &v)
	return v, err
}

func (c *client) run(ctx context.Context, name string, o wire.RunOptions) (wire.ActionResult, error) {
	var res wire.ActionResult
	err := c.call(ctx, http.MethodPost, mapPath(name, "/run"), o, &res)
	return res, err
}

func (c *client) pause(ctx context.Context, name string, withRelated bool) (wire.ActionResult, error) {
	var res wire.ActionResult
	err := c.call(ctx, http.MethodPost, mapPath(name, "/pause"), wire.PauseRequest{WithRelated: withRelated}, &res)
	return res, err
}

func (c *client) stop(ctx context.Context, name string) (wire.ActionResult, error) {
	var res wire.ActionResult
	err := c.call(ctx, http.MethodPost, mapPath(name, "/stop"), nil, &res)
	return res, err
}

// errors lists a map's initial sync or catch-up errors; limit 0 means all.
func (c *client) errors(ctx context.Context, name string, catchUp bool, limit int) (wire.ErrorList, error) {
	p := mapPath(name, "/errors")
	if catchUp {
		p = mapPath(name, "/catchup-errors")
	}
	if limit > 0 {
		p += "?limit=" + strconv.Itoa(limit)
	}
	var l wire.ErrorList
	err := c.call(ctx, http.MethodGet, p, nil, &l)
	return l, err
}

func (c *client) rerun(ctx context.Context, name string) (wire.RetryResult, error) {
	var res wire.RetryResult
	err := c.call(ctx, http.MethodPost, mapPath(name, "/rerun"), nil, &res)
	return res, err
}

func (c *client) retry(ctx context.Context, name string, sel wire.Selection) (wire.RetryResult, error) {
	var res wire.RetryResult
	err := c.call(ctx, http.MethodPost, mapPath(name, "/catchup-errors/retry"), sel, &res)
	return res, err
}

func (c *client) discard(ctx context.Context, name string, sel wire.Selection) (wire.DiscardResult, error) {
	var res wire.DiscardResult
	err := c.call(ctx, http.MethodPost, mapPath(name, "/catchup-errors/discard"), sel, &res)
	return res, err
}

func (c *client) activity(ctx context.Context, name string, limit int) ([]wire.Activity, error) {
	var l wire.ActivityList
	err := c.call(ctx, http.MethodGet, mapPath(name, "/activity?limit="+strconv.Itoa(limit)), nil, &l)
	return l.Activity, err
}
