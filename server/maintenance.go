package server

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/release"
)

// The admin API of scheduled maintenance, and the scheduler that starts
// and completes it.

func (s *Server) listMaintenances(r *http.Request, _ release.Token) ([]incident.Maintenance, error) {
	limit, err := queryInt(r, "limit", 50, 1000)
	if err != nil {
		return nil, err
	}
	return s.store.ListMaintenances(r.Context(), r.URL.Query().Get("pending") == "true", limit)
}

// maintenanceID parses the {id} path value.
func maintenanceID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, release.Errorf(release.EINVALID, "maintenance id %q: use a positive integer", r.PathValue("id"))
	}
	return id, nil
}

func (s *Server) getMaintenance(r *http.Request, _ release.Token) (incident.Maintenance, error) {
	id, err := maintenanceID(r)
	if err != nil {
		return incident.Maintenance{}, err
	}
	return s.store.GetMaintenance(r.Context(), id)
}

func (s *Server) scheduleMaintenance(r *http.Request, who release.Token, req api.NewMaintenance) (incident.Maintenance, error) {
	return s.store.ScheduleMaintenance(r.Context(), who.Actor(), req.Title, req.Message, req.Start, req.End, req.Components)
}

func (s *Server) moveMaintenance(r *http.Request, who release.Token, req api.MaintenanceStatusChange) (incident.Maintenance, error) {
	id, err := maintenanceID(r)
	if err != nil {
		return incident.Maintenance{}, err
	}
	return s.store.MoveMaintenance(r.Context(), who.Actor(), id, req.Status, req.Message)
}

// maintenanceLoop makes the transitions scheduled maintenance owes — start
// at the window's start, completion at its end — at start (so a window that
// began or ended while no server ran is caught up) and every
// MaintenanceInterval. Several servers may run it at once: the store's
// conditional updates let exactly one make each transition.
func (s *Server) maintenanceLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.MaintenanceInterval)
	defer t.Stop()
	for {
		n, err := s.store.RunMaintenanceSchedule(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("run the maintenance schedule", slog.Any("err", err))
		case n > 0:
			s.log.Info("moved maintenance on schedule", slog.Int("transitions", n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
