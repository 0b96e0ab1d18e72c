package controller

import "time"

// Key is an SSH public key allowed to push to apps through gitreceive.
type Key struct {
	ID string `json:"id"`
	// Key is the public key in authorized_keys form, without its comment.
	Key string `json:"key"`
	// Fingerprint is the SHA256 fingerprint ("SHA256:…"), unique.
	Fingerprint string    `json:"fingerprint"`
	Comment     string    `json:"comment,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}
