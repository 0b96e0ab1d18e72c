package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"
	"golang.org/x/crypto/ssh"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// listKeys takes ?fingerprint= to look one key up (gitreceive does, on
// every push); fingerprints hold "/", so they cannot go in the path.
func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if fp := r.URL.Query().Get("fingerprint"); fp != "" {
		k, err := s.store.Keys.Get(r.Context(), fp)
		if errors.Is(err, postgres.ErrNotFound) {
			httpjson.Write(w, http.StatusOK, []*controller.Key{})
			return nil
		}
		if err != nil {
			return err
		}
		httpjson.Write(w, http.StatusOK, []*controller.Key{k})
		return nil
	}
	p, err := page(r)
	if err != nil {
		return err
	}
	list, next, err := s.store.Keys.List(r.Context(), p)
	if err != nil {
		return err
	}
	writePage(w, r, p, list, next)
	return nil
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var req struct {
		Key string `json:"key"`
	}
	if err := s.decode(w, r, "key", &req); err != nil {
		return err
	}
	k, err := parseKey(req.Key)
	if err != nil {
		return err
	}
	if err := s.store.Keys.Create(r.Context(), k); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusCreated, k)
	return nil
}

// parseKey reads one public key in authorized_keys form ("ssh-ed25519
// AAAA… comment").
func parseKey(text string) (*controller.Key, error) {
	pub, comment, _, rest, err := ssh.ParseAuthorizedKey([]byte(text))
	if err != nil {
		return nil, httpjson.ValidationError("key", "not an SSH public key: %v", err)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, httpjson.ValidationError("key", "give one key at a time")
	}
	return &controller.Key{
		Key:         strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))),
		Fingerprint: ssh.FingerprintSHA256(pub),
		Comment:     comment,
	}, nil
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	k, err := s.store.Keys.Get(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, k)
	return nil
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	k, err := s.store.Keys.Delete(r.Context(), ps.ByName("id"))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, k)
	return nil
}
