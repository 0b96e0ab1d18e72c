# Flynn: build, check and test. `make cluster` and `make test` are the two
# commands the README promises work on a fresh Debian 12 machine.

GO        ?= go
GOBIN     := $(shell $(GO) env GOPATH)/bin
BIN       := bin
# VERSION is what the binaries that say their version (pkg/version.String():
# the CLI, the controller) say.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/openflynn/flynn/pkg/version.stamped=$(VERSION)
# VERSIONED are the commands that link pkg/version; only they are stamped.
# The others are built without the stamp and without Go's VCS stamp
# (-buildvcs=false), so their bytes depend on their code alone: a commit
# that leaves a component alone leaves its image's content tag, and its
# deployment on an upgrade, alone. (Evaluated when build runs, after deps
# has installed Go.)
COMMANDS   = $(shell $(GO) list ./cmd/...)
VERSIONED  = $(shell $(GO) list -f '{{.ImportPath}}{{range .Deps}} {{.}}{{end}}' ./cmd/... | awk '/ github.com\/openflynn\/flynn\/pkg\/version( |$$)/ {print $$1}')
TEST_TIMEOUT ?= 40m

.PHONY: all build deps dockerd check fmt vet staticcheck tidy test test-unit e2e cluster cluster-down clean

all: build

## build: every binary under cmd/ into bin/, static.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags '-s -w' -o $(BIN)/ $(filter-out $(VERSIONED),$(COMMANDS))
	$(if $(VERSIONED),CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags '$(LDFLAGS)' -o $(BIN)/ $(VERSIONED))

## deps: install missing system packages and Go tools (idempotent).
deps:
	script/install-deps

## dockerd: start a Docker engine unless one answers.
dockerd:
	script/start-dockerd

## check: formatting, vet, staticcheck and a tidy go.mod.
check: fmt vet staticcheck tidy

fmt:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GOBIN)/staticcheck ./...

tidy:
	@cp go.mod /tmp/flynn-go.mod.bak; cp go.sum /tmp/flynn-go.sum.bak; \
	$(GO) mod tidy; \
	if ! git diff --quiet -- go.mod go.sum; then \
		echo "go.mod/go.sum are not tidy:"; git --no-pager diff -- go.mod go.sum; \
		cp /tmp/flynn-go.mod.bak go.mod; cp /tmp/flynn-go.sum.bak go.sum; exit 1; fi

## test: install what is missing, start Docker, check, build the binaries
## and images, run every test (unit and integration) with the race
## detector, then the user's walk end to end on a cluster.
test: deps dockerd check build images
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	@echo "router tests again, on the net/http engine"
	ROUTER_TEST_HTTP_ENGINE=net/http $(GO) test -race -count=1 ./router/server/
	script/e2e

## e2e: the user's walk (test/e2e) on the running cluster, or on one brought
## up (and down again) for it.
e2e: build
	script/e2e

## test-unit: hermetic tests only (no Docker, Postgres or etcd).
test-unit:
	$(GO) test -short ./...

## cluster: a running cluster on this machine (as root): install-flynn,
## flynn-host, bootstrap; prints the `flynn cluster add` line and writes it
## to bin/cluster-add. NODES=3 joins nodes 2 and 3 (127.0.0.2, 127.0.0.3)
## to it.
NODES ?= 1
cluster:
	NODES=$(NODES) script/cluster up

## cluster-down: stop every node's flynn-host, remove their containers,
## state, app networks and firewall chains.
cluster-down:
	script/cluster down

clean:
	rm -rf $(BIN)

## images: every image the cluster runs, built locally with Docker (Debian
## bases from mmdebstrap, one image per component binary), tagged by content
## so that a rebuild that changes nothing is a no-op; writes bin/images.json.
## IMAGES_FLAGS are more flynn-images flags (--later-stacks).
.PHONY: images
images: build
	$(BIN)/flynn-images --repo . --manifest $(BIN)/images.json $(IMAGES_FLAGS)

## dist: one tarball (dist/flynn-VERSION-linux-ARCH.tar.gz) of the binaries
## and the saved images, that another node installs from with no Go and no
## image build (tar -xzf it, then flynn/script/install-flynn).
.PHONY: dist
dist: images
	VERSION=$(VERSION) script/dist

## bench-isolation: the router→app hop with host networking against an app
## in a network namespace of its own (ROUNDS, DURATION, CONNS, THREADS).
.PHONY: bench-isolation
bench-isolation: images
	test/bench/isolation/run

## bench-deploys: 20 consecutive deploys under wrk load through the router
## on the running cluster, errors against as long without deploys.
.PHONY: bench-deploys
bench-deploys:
	test/bench/deploys/run

## bench-router: wrk through the router (each HTTP engine) against nginx
## proxying the same backend, in interleaved rounds; prints req/s, p50, p99,
## CPU per request and the ratios to nginx (MATRIX, ROUNDS, DURATION,
## ENGINES, MAX_LOAD: see test/bench/router/run).
.PHONY: bench-router
bench-router:
	test/bench/router/run
