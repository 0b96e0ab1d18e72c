//go:build !unix

package server

import "errors"

func setReusePort(uintptr) error {
	return errors.New("not supported on this system")
}
