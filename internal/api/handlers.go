package api

import (
	"context"
	"net/http"

	"github.com/dualwrite/dualwrite/internal/problem"
	"github.com/dualwrite/dualwrite/internal/wire"
)

// Limits of the list routes' ?limit= parameter.
const (
	defaultActivityLimit = 50
	maxListLimit         = 10000
)

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, wire.Health{Status: "ok", Version: s.version})
}

func (s *Server) listMaps(w http.ResponseWriter, r *http.Request) {
	maps, err := s.engine.Maps(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if maps == nil {
		maps = []wire.MapView{}
	}
	writeJSON(w, http.StatusOK, wire.MapList{Maps: maps})
}

func (s *Server) showMap(w http.ResponseWriter, r *http.Request) {
	m, err := s.engine.Map(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	var o wire.RunOptions
	a, err := actor(r)
	if err == nil {
		err = decodeBody(w, r, &o, true)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The header, not the body, says who acts: the activity log must not
	// be forgeable per request body.
	o.Actor = a
	res, err := s.engine.Run(r.Context(), r.PathValue("name"), o)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) {
	var p wire.PauseRequest
	a, err := actor(r)
	if err == nil {
		err = decodeBody(w, r, &p, true)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.engine.Pause(r.Context(), r.PathValue("name"), p.WithRelated, a)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	var none struct{}
	a, err := actor(r)
	if err == nil {
		err = decodeBody(w, r, &none, true)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.engine.Stop(r.Context(), r.PathValue("name"), a)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) initErrors(w http.ResponseWriter, r *http.Request) {
	s.listErrors(w, r, s.engine.InitErrors)
}

func (s *Server) catchUpErrors(w http.ResponseWriter, r *http.Request) {
	s.listErrors(w, r, s.engine.CatchUpErrors)
}

// listErrors answers with the first ?limit= errors and the total count, so
// a client can show a page and say how many more there are.
func (s *Server) listErrors(w http.ResponseWriter, r *http.Request, list func(ctx context.Context, name string) ([]wire.RowError, error)) {
	limit, err := queryLimit(r, 0, maxListLimit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	errs, err := list(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	total := len(errs)
	if limit > 0 && len(errs) > limit {
		errs = errs[:limit]
	}
	if errs == nil {
		errs = []wire.RowError{}
	}
	for i := range errs {
		if errs[i].KeyText == "" {
			errs[i].KeyText = wire.KeyText(errs[i].Key)
		}
	}
	writeJSON(w, http.StatusOK, wire.ErrorList{Errors: errs, Total: total})
}

func (s *Server) rerun(w http.ResponseWriter, r *http.Request) {
	var none struct{}
	a, err := actor(r)
	if err == nil {
		err = decodeBody(w, r, &none, true)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.engine.Rerun(r.Context(), r.PathValue("name"), a)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// selection reads a retry or discard body and returns the IDs to pass to
// the engine, nil meaning all.
func selection(w http.ResponseWriter, r *http.Request) ([]int64, error) {
	var sel wire.Selection
	if err := decodeBody(w, r, &sel, false); err != nil {
		return nil, err
	}
	switch {
	case sel.All && len(sel.IDs) > 0:
		return nil, problem.New(problem.BadRequest, `give either "ids" or "all": true, not both`)
	case sel.All:
		return nil, nil
	case len(sel.IDs) == 0:
		return nil, problem.New(problem.BadRequest, `give the error ids as {"ids":[1,2]} or every error as {"all":true}`)
	}
	for _, id := range sel.IDs {
		if id <= 0 {
			return nil, problem.New(problem.BadRequest, "error id %d is not valid; ids are positive, as listed by GET .../catchup-errors", id)
		}
	}
	return sel.IDs, nil
}

func (s *Server) retry(w http.ResponseWriter, r *http.Request) {
	a, err := actor(r)
	var ids []int64
	if err == nil {
		ids, err = selection(w, r)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.engine.Retry(r.Context(), r.PathValue("name"), ids, a)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) discard(w http.ResponseWriter, r *http.Request) {
	a, err := actor(r)
	var ids []int64
	if err == nil {
		ids, err = selection(w, r)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	n, err := s.engine.Discard(r.Context(), r.PathValue("name"), ids, a)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.DiscardResult{Discarded: n})
}

func (s *Server) activity(w http.ResponseWriter, r *http.Request) {
	limit, err := queryLimit(r, defaultActivityLimit, maxListLimit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	acts, err := s.engine.Activity(r.Context(), r.PathValue("name"), limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if acts == nil {
		acts = []wire.Activity{}
	}
	writeJSON(w, http.StatusOK, wire.ActivityList{Activity: acts})
}
