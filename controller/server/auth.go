package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/postgres"
	"github.com/openflynn/flynn/pkg/httpjson"
)

// Two kinds of caller use the API, told apart by the basic-auth password:
//
//	controller key (Options.AuthKey) ─► system: the scheduler, bootstrap, gitreceive, the router, `flynn --system`
//	an API key's secret              ─► person: everyone else (see controller.APIKey)
//
// A person may do everything but change a system app (system.go).

// caller is who made a request.
type caller struct {
	// system is true for requests made with the controller key (or to a
	// controller run without one).
	system bool
	// key is the person's API key; nil for the system.
	key *controller.APIKey
}

type callerKey struct{}

func withCaller(ctx context.Context, c caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// callerOf returns who made the request ctx belongs to. A context the
// authentication never saw is a person's, the least trusted.
func callerOf(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

// creatorOf names the person who made the request ctx belongs to, for
// the releases it makes (controller.ReleaseMetaCreatedBy): their API
// key's name, or "" for the system.
func creatorOf(ctx context.Context) string {
	if c := callerOf(ctx); c.key != nil {
		return c.key.Name
	}
	return ""
}

var errUnauthorized = httpjson.Errorf(httpjson.CodeUnauthorized, "missing or wrong key")

// authenticate lets through only requests that carry the controller key or
// an API key's secret as their basic-auth password, telling the handlers
// which it was.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.identify(r)
		if err != nil {
			if errors.Is(err, errUnauthorized) {
				w.Header().Set("WWW-Authenticate", `Basic realm="flynn"`)
			} else {
				s.logger.Error("authenticate", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			httpjson.WriteError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(withCaller(r.Context(), c)))
	})
}

// identify finds the caller of r, or fails with errUnauthorized. Without a
// controller key (development only) whoever shows no API key is the
// system.
func (s *Server) identify(r *http.Request) (caller, error) {
	_, pass, ok := r.BasicAuth()
	if ok && s.opts.AuthKey != "" && subtle.ConstantTimeCompare([]byte(pass), []byte(s.opts.AuthKey)) == 1 {
		return caller{system: true}, nil
	}
	if ok && pass != "" {
		k, err := s.apiKey(r.Context(), pass)
		if err == nil {
			return caller{key: k}, nil
		}
		if !errors.Is(err, postgres.ErrNotFound) {
			return caller{}, err
		}
	}
	if s.opts.AuthKey == "" {
		return caller{system: true}, nil
	}
	return caller{}, errUnauthorized
}

// hashSecret is what the store keeps of an API key's secret.
func hashSecret(secret string) [sha256.Size]byte { return sha256.Sum256([]byte(secret)) }

// apiKey returns the API key whose secret is secret, from the cache or
// the store. Keys are found by the SHA-256 of the secret: how long finding
// one takes can tell an attacker at most something about a hash of a
// 256-bit random secret, which brings him no closer to a secret. The hash
// found is compared once more in constant time all the same.
func (s *Server) apiKey(ctx context.Context, secret string) (*controller.APIKey, error) {
	hash := hashSecret(secret)
	if k := s.keys.get(hash); k != nil {
		return k, nil
	}
	gen := s.keys.generation()
	k, err := s.store.APIKeys.GetByHash(ctx, hash[:])
	if err != nil {
		return nil, err
	}
	s.keys.put(gen, hash, k)
	return k, nil
}

// keyCacheTTL is how long a cached API key is trusted without news of
// its revocation.
const keyCacheTTL = time.Minute

// keyCache remembers the API keys that recent requests used, so a person's
// request costs no query. Only keys that exist are remembered: a secret
// nobody has is looked up every time, so a new key works at once
// everywhere. A revoked key is forgotten at once by the controller that
// revoked it and, through the event log, by every other one
// (watchRevocations); while that news cannot be read nothing is cached,
// and the TTL bounds how long an entry lives should news go missing.
type keyCache struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	// synced is set while revocations are followed; nothing is cached
	// otherwise.
	synced bool
	// gen changes whenever keys are forgotten: a lookup that began before
	// then may have read a key that is gone now, and must not cache it.
	gen     uint64
	entries map[[sha256.Size]byte]keyEntry
}

type keyEntry struct {
	key     *controller.APIKey
	hash    [sha256.Size]byte
	expires time.Time
}

// maxCachedKeys bounds the cache; past it, it starts again empty.
const maxCachedKeys = 10000

func newKeyCache(ttl time.Duration) *keyCache {
	return &keyCache{ttl: ttl, now: time.Now, entries: map[[sha256.Size]byte]keyEntry{}}
}

func (c *keyCache) get(hash [sha256.Size]byte) *controller.APIKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok || subtle.ConstantTimeCompare(e.hash[:], hash[:]) != 1 {
		return nil
	}
	if c.now().After(e.expires) {
		delete(c.entries, hash)
		return nil
	}
	return e.key
}

// generation is the value to give put for a lookup that starts now.
func (c *keyCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put caches k, found by a lookup that started at generation gen, unless
// keys were forgotten since or revocations are not followed.
func (c *keyCache) put(gen uint64, hash [sha256.Size]byte, k *controller.APIKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.synced || gen != c.gen {
		return
	}
	if len(c.entries) >= maxCachedKeys {
		clear(c.entries)
	}
	c.entries[hash] = keyEntry{key: k, hash: hash, expires: c.now().Add(c.ttl)}
}

// forget drops the key with id keyID.
func (c *keyCache) forget(keyID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for h, e := range c.entries {
		if e.key.ID == keyID {
			delete(c.entries, h)
		}
	}
}

// reset forgets every key; synced says whether revocations are followed
// from now on.
func (c *keyCache) reset(synced bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.synced = synced
	clear(c.entries)
}

// setSynced says revocations are followed again, after a failure to read
// them that reset the cache.
func (c *keyCache) setSynced() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.synced = true
}

// watchRevocations keeps the key cache honest when another controller
// revokes a key: after every commit the notifier announces, it reads the
// API key events that are new and forgets the revoked keys. When it cannot
// read the log it forgets every key and caches none until it can again.
// It returns when ctx ends.
func (s *Server) watchRevocations(ctx context.Context) {
	wake, unsubscribe := s.notifier.Subscribe()
	defer unsubscribe()
	last := int64(-1) // not known yet
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
		if last < 0 {
			id, err := s.store.Events.LastID(ctx)
			if err != nil {
				s.keyWatchFailed(ctx, err)
				continue
			}
			// What was revoked before now may be in the cache still.
			last = id
			s.keys.reset(true)
			continue
		}
		for ctx.Err() == nil {
			events, err := s.store.Events.List(ctx, postgres.EventQuery{After: last, ObjectTypes: []string{controller.ObjectTypeAPIKey}, Limit: eventBatch})
			if err != nil {
				s.keyWatchFailed(ctx, err)
				break
			}
			for _, e := range events {
				last = e.ID
				if e.Op == controller.OpDelete {
					s.keys.forget(e.ObjectID)
				}
			}
			if len(events) < eventBatch {
				s.keys.setSynced()
				break
			}
		}
	}
}

func (s *Server) keyWatchFailed(ctx context.Context, err error) {
	s.keys.reset(false)
	if ctx.Err() == nil {
		s.logger.Warn("cannot read API key revocations; caching no keys until it can", "err", err)
	}
}
