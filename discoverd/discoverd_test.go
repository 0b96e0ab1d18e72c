package discoverd

import (
	"strings"
	"testing"
)

func TestValidateServiceName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"web", true},
		{"my-app-web", true},
		{"a", true},
		{"9lives", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"Web", false},
		{"-web", false},
		{"web-", false},
		{"web_1", false},
		{"web.1", false},
		{"../etc", false},
		{"a b", false},
	}
	for _, tt := range tests {
		err := ValidateServiceName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateServiceName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestInstanceValidate(t *testing.T) {
	tests := []struct {
		name      string
		inst      Instance
		wantField string
	}{
		{"ok", Instance{ID: "a1", Addr: "127.0.0.1:80", Proto: "http"}, ""},
		{"ok ipv6", Instance{ID: "a1", Addr: "[::1]:80"}, ""},
		{"ok hostname", Instance{ID: "a1", Addr: "node1:5432", Proto: "tcp"}, ""},
		{"no id", Instance{Addr: "127.0.0.1:80"}, "id"},
		{"bad id", Instance{ID: "a/b", Addr: "127.0.0.1:80"}, "id"},
		{"no addr", Instance{ID: "a1"}, "addr"},
		{"no port", Instance{ID: "a1", Addr: "127.0.0.1"}, "addr"},
		{"port zero", Instance{ID: "a1", Addr: "127.0.0.1:0"}, "addr"},
		{"port too big", Instance{ID: "a1", Addr: "127.0.0.1:70000"}, "addr"},
		{"port not a number", Instance{ID: "a1", Addr: "127.0.0.1:http"}, "addr"},
		{"no host", Instance{ID: "a1", Addr: ":80"}, "addr"},
		{"bad proto", Instance{ID: "a1", Addr: "127.0.0.1:80", Proto: "HTTP!"}, "proto"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			field, err := tt.inst.Validate()
			if field != tt.wantField || (err == nil) != (tt.wantField == "") {
				t.Errorf("Validate() = %q, %v; want field %q", field, err, tt.wantField)
			}
		})
	}
}

func TestInstanceID(t *testing.T) {
	a := InstanceID("http", "127.0.0.1:80")
	if a != InstanceID("http", "127.0.0.1:80") {
		t.Error("InstanceID is not stable")
	}
	if a == InstanceID("http", "127.0.0.1:81") || a == InstanceID("tcp", "127.0.0.1:80") {
		t.Error("InstanceID collides for different endpoints")
	}
	if err := ValidateInstanceID(a); err != nil {
		t.Errorf("InstanceID result is not a valid id: %v", err)
	}
}

func TestInstanceEqual(t *testing.T) {
	base := Instance{ID: "a", Addr: "127.0.0.1:1", Proto: "http", Meta: map[string]string{"k": "v"}, Index: 3}
	same := base
	same.Index = 9
	if !base.Equal(&same) {
		t.Error("instances differing only in Index are not Equal")
	}
	other := base
	other.Meta = map[string]string{"k": "w"}
	if base.Equal(&other) {
		t.Error("instances with different meta are Equal")
	}
	if (*Instance)(nil).Equal(&base) || !(*Instance)(nil).Equal(nil) {
		t.Error("nil handling is wrong")
	}
}
