package gitreceive

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	gossh "golang.org/x/crypto/ssh"
)

// loadHostKey parses keyPEM, or else the key in path, generating and
// saving an ed25519 key there when there is none, so that clients see the
// same host key after a restart.
func loadHostKey(keyPEM []byte, path string) (gossh.Signer, error) {
	if len(keyPEM) > 0 {
		s, err := gossh.ParsePrivateKey(keyPEM)
		if err != nil {
			return nil, fmt.Errorf("host key: %w", err)
		}
		return s, nil
	}
	data, err := os.ReadFile(path)
	if err == nil {
		s, err := gossh.ParsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("host key %s: %w", path, err)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("host key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate host key: %w", err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "gitreceive host key")
	if err != nil {
		return nil, fmt.Errorf("encode host key: %w", err)
	}
	data = pem.EncodeToMemory(block)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return nil, fmt.Errorf("save host key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("save host key: %w", err)
	}
	return gossh.ParsePrivateKey(data)
}
