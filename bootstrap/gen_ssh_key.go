package bootstrap

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// genSSHKey makes an Ed25519 SSH key pair (gitreceive's host key):
// {{STEP.private_key}} (PKCS#8 PEM), {{STEP.public_key}} (authorized_keys
// form) and {{STEP.fingerprint}}.
type genSSHKey struct {
	stepHead
}

func (g *genSSHKey) run(_ context.Context, r *run, id string) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("encode key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	fp := ssh.FingerprintSHA256(sshPub)
	r.setValues(id, map[string]string{
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"public_key":  strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))),
		"fingerprint": fp,
	})
	return fp, nil
}
