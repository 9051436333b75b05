package server

import (
	"net/http"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

func (s *Server) listUsers(r *http.Request, _ release.Token) ([]sqlstore.User, error) {
	return s.store.ListUsers(r.Context())
}

func (s *Server) createUser(r *http.Request, who release.Token, req api.NewUser) (sqlstore.User, error) {
	return s.store.CreateUser(r.Context(), who.Actor(), req.Name, req.Role, req.Password)
}

func (s *Server) deleteUser(r *http.Request, who release.Token) error {
	return s.store.DeleteUser(r.Context(), who.Actor(), r.PathValue("name"))
}
