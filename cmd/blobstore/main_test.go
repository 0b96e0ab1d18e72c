package main

import (
	"testing"

	"github.com/openflynn/flynn/blobstore/server"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, cfg server.Config)
		wantErr bool
	}{
		{
			name: "defaults",
			check: func(t *testing.T, cfg server.Config) {
				if cfg.HTTPAddr != ":5001" || cfg.Backend != "fs" || cfg.Dir != server.DefaultDir || cfg.MaxSize != 5<<30 || cfg.Registrar != nil {
					t.Errorf("config = %+v", cfg)
				}
			},
		},
		{
			name: "environment",
			env:  map[string]string{"PORT": "55001", "FLYNN_AUTH_KEY": "k", "DATABASE_URL": "postgres://x", "DISCOVERD": "http://127.0.0.1:1111", "EXTERNAL_IP": "10.0.0.2"},
			args: []string{"--backend", "postgres"},
			check: func(t *testing.T, cfg server.Config) {
				if cfg.HTTPAddr != ":55001" || cfg.AuthKey != "k" || cfg.DatabaseURL != "postgres://x" || cfg.Registrar == nil || cfg.AdvertiseHost != "10.0.0.2" {
					t.Errorf("config = %+v", cfg)
				}
			},
		},
		{
			name: "max size in MiB",
			args: []string{"--max-size", "512MiB"},
			check: func(t *testing.T, cfg server.Config) {
				if cfg.MaxSize != 512<<20 {
					t.Errorf("max size = %d", cfg.MaxSize)
				}
			},
		},
		{name: "bad max size", args: []string{"--max-size", "lots"}, wantErr: true},
		{name: "zero max size", args: []string{"--max-size", "0"}, wantErr: true},
		{name: "unknown backend", args: []string{"--backend", "s3"}, wantErr: true},
		{name: "postgres without database", args: []string{"--backend", "postgres"}, wantErr: true},
		{name: "stray argument", args: []string{"serve"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.args, func(k string) string { return tt.env[k] })
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseConfig(%v) succeeded, want an error", tt.args)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg)
		})
	}
}
