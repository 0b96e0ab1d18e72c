package postgres

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openflynn/flynn/controller"
)

// BuildEnvRepo stores the cluster's build settings (controller.BuildEnv):
// one row, which migration 0009 makes.
type BuildEnvRepo struct{ db *db }

// MaxBuildEnvBytes bounds the cluster's build settings: the names and
// values of Env and the certificates together. Every job of every app
// carries them in its environment, whose size the kernel bounds for
// everything a process gets (a few MiB at most, often less), so they must
// leave most of it to the app.
const MaxBuildEnvBytes = 256 << 10

// Get returns the cluster's build settings; UpdatedAt is zero while they
// were never changed.
func (r *BuildEnvRepo) Get(ctx context.Context) (*controller.BuildEnv, error) {
	return getBuildEnv(ctx, r.db.pool, false)
}

func getBuildEnv(ctx context.Context, q querier, forUpdate bool) (*controller.BuildEnv, error) {
	lock := ""
	if forUpdate {
		lock = " FOR UPDATE"
	}
	be, err := scanBuildEnv(q.QueryRow(ctx, `SELECT env, ca_certs, updated_at FROM build_env`+lock))
	if err != nil {
		return nil, fmt.Errorf("read build env: %w", err)
	}
	return be, nil
}

func scanBuildEnv(row pgx.Row) (*controller.BuildEnv, error) {
	var be controller.BuildEnv
	var updated *time.Time
	if err := row.Scan(&be.Env, &be.CACerts, &updated); err != nil {
		return nil, err
	}
	if updated != nil {
		be.UpdatedAt = *updated
	}
	return &be, nil
}

// Patch changes the cluster's build settings as p says and returns them,
// emitting an ObjectTypeBuildEnv event. It refuses (ErrInvalid) a name no
// job may have, controller.CACertsEnv among the variables (it carries
// CACerts), a value with a NUL byte, certificates that are not PEM
// CERTIFICATE blocks x509 parses, and settings above MaxBuildEnvBytes. A
// patch that changes nothing writes nothing and emits no event.
func (r *BuildEnvRepo) Patch(ctx context.Context, p controller.BuildEnvPatch) (*controller.BuildEnv, error) {
	var be *controller.BuildEnv
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		old, err := getBuildEnv(ctx, tx, true)
		if err != nil {
			return err
		}
		next, err := patchBuildEnv(old, p)
		if err != nil {
			return err
		}
		if maps.Equal(next.Env, old.Env) && next.CACerts == old.CACerts {
			be = old
			return nil
		}
		be, err = scanBuildEnv(tx.QueryRow(ctx, `UPDATE build_env SET env = $1, ca_certs = $2, updated_at = now()
			RETURNING env, ca_certs, updated_at`, next.Env, next.CACerts))
		if err != nil {
			return fmt.Errorf("update build env: %w", err)
		}
		return emit(ctx, tx, change{"", controller.ObjectTypeBuildEnv, controller.BuildEnvObjectID, controller.OpUpdate, be})
	})
	return be, err
}

// patchBuildEnv returns old changed by p, or the refusal of p.
func patchBuildEnv(old *controller.BuildEnv, p controller.BuildEnvPatch) (*controller.BuildEnv, error) {
	next := &controller.BuildEnv{Env: maps.Clone(old.Env), CACerts: old.CACerts}
	if next.Env == nil {
		next.Env = map[string]string{}
	}
	if p.Env != nil {
		for i, k := range p.Env.Unset {
			if _, set := p.Env.Set[k]; set {
				return nil, invalid(fmt.Sprintf("env.unset.%d", i), "%s is both set and unset", k)
			}
			delete(next.Env, k)
		}
		for _, k := range slices.Sorted(maps.Keys(p.Env.Set)) {
			if k == controller.CACertsEnv {
				return nil, invalid("env.set", "%s carries the cluster's CA certificates: give them as ca_certs", k)
			}
			if strings.IndexByte(p.Env.Set[k], 0) >= 0 {
				return nil, invalid("env.set", "the value of %s holds a NUL byte, which no process environment can carry", k)
			}
		}
		maps.Copy(next.Env, p.Env.Set)
	}
	// The rule of a release's env (host.ValidEnvName): these variables
	// reach the same jobs.
	if err := checkEnvNames(next.Env, p.Env); err != nil {
		return nil, err
	}
	if p.CACerts != nil {
		if *p.CACerts != "" {
			if err := checkCACerts(*p.CACerts); err != nil {
				return nil, err
			}
		}
		next.CACerts = *p.CACerts
	}
	size := len(next.CACerts)
	for k, v := range next.Env {
		size += len(k) + len(v) + 2 // NAME=value and its NUL
	}
	if size > MaxBuildEnvBytes {
		return nil, invalid("", "the build env would take %d bytes of every job's environment; at most %d (variables and certificates together)", size, MaxBuildEnvBytes)
	}
	return next, nil
}

// checkCACerts refuses text that is not one or more PEM CERTIFICATE
// blocks that x509 parses. Text between blocks is allowed, as in the
// system's bundles (comments naming each certificate); text after the
// last one is not: it is most likely a certificate cut short.
func checkCACerts(text string) error {
	rest := []byte(text)
	n := 0
	for {
		block, after := pem.Decode(rest)
		if block == nil {
			break
		}
		n++
		if block.Type != "CERTIFICATE" {
			return invalid("ca_certs", "PEM block %d is a %s, not a CERTIFICATE: give certificates only (never a key: every job could read it)", n, block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return invalid("ca_certs", "certificate %d does not parse: %v", n, err)
		}
		rest = after
	}
	if n == 0 {
		return invalid("ca_certs", "holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return invalid("ca_certs", "the text after certificate %d is not a PEM certificate (one cut short?)", n)
	}
	return nil
}
