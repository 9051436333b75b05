package server

import (
	"crypto/rand"
	"net/http"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

// The admin API of the caller's identity, API tokens and the signing keys.

func (s *Server) whoami(_ *http.Request, who release.Token) (api.Identity, error) {
	return api.Identity{TokenID: who.ID, Name: who.Name, Role: who.Role}, nil
}

func (s *Server) listTokens(r *http.Request, _ release.Token) ([]release.Token, error) {
	return s.store.ListTokens(r.Context())
}

func (s *Server) createToken(r *http.Request, who release.Token, req api.NewToken) (api.Token, error) {
	t, secret, err := s.store.CreateToken(r.Context(), who.Actor(), req.Name, req.Role)
	return api.Token{Token: t, Secret: secret}, err
}

func (s *Server) revokeToken(r *http.Request, who release.Token) error {
	return s.store.RevokeToken(r.Context(), who.Actor(), r.PathValue("id"))
}

func (s *Server) rotateKey(r *http.Request, who release.Token, _ api.Empty) (sign.PublicKey, error) {
	k, err := sign.GenerateKey(rand.Reader, storeTime())
	if err != nil {
		return sign.PublicKey{}, err
	}
	if _, err := s.store.AddSigningKey(r.Context(), who.Actor(), k, false); err != nil {
		return sign.PublicKey{}, err
	}
	return k.Public(), nil
}
