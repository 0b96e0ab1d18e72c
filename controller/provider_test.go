package controller

import "testing"

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://:s3cret@postgres-api.discoverd/databases", "http://:(redacted)@postgres-api.discoverd/databases"},
		{"http://user:s3cret@p.example:8080/x?y=1", "http://user:(redacted)@p.example:8080/x?y=1"},
		{"http://s3cret@p.example/x", "http://(redacted)@p.example/x"},
		{"http://p.example/x", "http://p.example/x"},
		{"http://:s3cret@[::1/x", RedactedValue},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
