package bootstrap

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// wait waits until a discoverd service has an instance and, with Path,
// until an HTTP GET of the service by name ("http://SERVICE.discoverd/PATH",
// which reaches a live instance) answers with Status.
type wait struct {
	stepHead
	// Service is the discoverd service to wait for.
	Service string `json:"service"`
	// Path, when set, is GET on the service ("http://SERVICE.discoverd/PATH").
	Path string `json:"path,omitempty"`
	// Status is the status the GET must answer; 0 accepts any below 500.
	Status int `json:"status,omitempty"`
	// Timeout is a Go duration; default the run's WaitTimeout.
	Timeout string `json:"timeout,omitempty"`
}

func (w *wait) run(ctx context.Context, r *run, _ string) (string, error) {
	if w.Service == "" {
		return "", fmt.Errorf("service is required")
	}
	timeout := r.cfg.WaitTimeout
	if w.Timeout != "" {
		d, err := time.ParseDuration(w.Timeout)
		if err != nil || d <= 0 {
			return "", fmt.Errorf("timeout %q: want a positive duration like 30s", w.Timeout)
		}
		timeout = d
	}
	start := time.Now()
	var addr string
	err := retry(ctx, r.cfg.PollInterval, timeout, func(ctx context.Context) (bool, error) {
		a, err := w.check(ctx, r)
		addr = a
		return err == nil, err
	})
	if err != nil {
		return "", fmt.Errorf("%s not ready: %w", w.Service, err)
	}
	return fmt.Sprintf("%s at %s after %s", w.Service, addr, time.Since(start).Round(time.Millisecond)), nil
}

// check looks once (retry bounds it by checkTimeout); it returns the
// first instance's address when the service is ready.
func (w *wait) check(ctx context.Context, r *run) (string, error) {
	insts, err := r.cfg.Discoverd.Instances(ctx, w.Service)
	if err != nil {
		return "", fmt.Errorf("discoverd: %w", err)
	}
	if len(insts) == 0 {
		return "", fmt.Errorf("no instance registered in discoverd")
	}
	addr := insts[0].Addr
	if w.Path == "" {
		return addr, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, serviceURL(w.Service)+w.Path, nil)
	if err != nil {
		return "", err
	}
	resp, err := r.cfg.HTTPClient.Do(req)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if w.Status != 0 && resp.StatusCode != w.Status || w.Status == 0 && resp.StatusCode >= 500 {
		return "", fmt.Errorf("GET %s answered %s", w.Path, resp.Status)
	}
	return addr, nil
}
