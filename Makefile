# Anchor: an HSM-backed CA cluster.
#
#   make run    start a local 3-node cluster with SoftHSM2 (Ctrl-C stops it)
#   make test   run the whole test suite

DATA_DIR ?= ./data
NODES ?= 3
GO ?= go
GOFLAGS_TEST ?= -count=1 -timeout 30m

.PHONY: all deps build run test proto proto-check clean

all: build

deps:
	@bash scripts/install-deps.sh

build:
	$(GO) build -o bin/anchor-node ./cmd/anchor-node
	$(GO) build -o bin/anchorctl ./cmd/anchorctl
	$(GO) build -o bin/anchor-devcluster ./cmd/anchor-devcluster
	$(GO) build -o bin/anchor-ceremony ./cmd/anchor-ceremony

run: deps build
	./bin/anchor-devcluster -data-dir $(DATA_DIR) -nodes $(NODES) -node-bin ./bin/anchor-node

test: deps
	$(GO) vet ./...
	$(GO) test $(GOFLAGS_TEST) ./...

# proto regenerates the gRPC code in api/anchorv1 from api/proto with protoc
# and the plugins pinned as tool dependencies in go.mod (protoc-gen-go,
# protoc-gen-go-grpc). proto-check fails when the committed code is stale.
PROTO_PLUGINS := bin/protoc-plugins

proto:
	$(GO) build -o $(PROTO_PLUGINS)/ google.golang.org/protobuf/cmd/protoc-gen-go \
		google.golang.org/grpc/cmd/protoc-gen-go-grpc
	protoc -I api/proto \
		--plugin=protoc-gen-go=$(PROTO_PLUGINS)/protoc-gen-go \
		--plugin=protoc-gen-go-grpc=$(PROTO_PLUGINS)/protoc-gen-go-grpc \
		--go_out=. --go_opt=module=anchor \
		--go-grpc_out=. --go-grpc_opt=module=anchor \
		api/proto/anchor/v1/*.proto

proto-check:
	$(GO) test -count=1 -run TestGeneratedCode_UpToDate ./api

clean:
	rm -rf bin

# Docker deployment: docker-compose.yml (README.md, Deployment).
#
#   make docker-image   build anchor-node:local (and anchor-base:bookworm when
#                       no base image can be pulled)
#   make compose-up     start the cluster (NODES=5 for the five-node variant)
#   make compose-down   stop it, three or five nodes; the volumes with tokens
#                       and state stay (VOLUMES=delete removes them too, and
#                       the CA keys)
#   make e2e            run the failure drills in deploy/drills
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
ANCHOR_IMAGE ?= anchor-node:local
E2E_TIMEOUT ?= 25m
COMPOSE_FILES := -f docker-compose.yml $(if $(filter 5,$(NODES)),-f docker-compose.5.yml)

.PHONY: docker-image compose-up compose-down e2e e2e-clean

docker-image:
	ANCHOR_IMAGE=$(ANCHOR_IMAGE) GO=$(GO) bash deploy/docker/build-image.sh

compose-up: docker-image
	ANCHOR_IMAGE=$(ANCHOR_IMAGE) $(COMPOSE) $(COMPOSE_FILES) up -d

# compose-down names both compose files whatever NODES says: for three
# nodes the fourth and fifth are simply absent, and for five none is left.
compose-down:
	$(COMPOSE) -f docker-compose.yml -f docker-compose.5.yml --profile tools down \
		$(if $(filter delete,$(VOLUMES)),-v)

# E2E_CLEAN removes the drills' compose projects (deploy/drills), with
# their containers, networks and volumes.
E2E_CLEAN = for p in anchordrill3 anchordrill5; do \
		COMPOSE_PROJECT_NAME=$$p $(COMPOSE) -f docker-compose.yml -f docker-compose.5.yml \
			--profile tools down -v --remove-orphans -t 5 >/dev/null 2>&1 || true; \
	done

# e2e runs E2E_CLEAN when it ends, whether the drills pass, fail or are
# interrupted. It calls no $(MAKE): make -n runs every line that does.
e2e: docker-image
	@trap '$(E2E_CLEAN)' EXIT; \
	ANCHOR_IMAGE=$(ANCHOR_IMAGE) ANCHOR_COMPOSE="$(COMPOSE)" \
		$(GO) test -tags e2e -count=1 -v -timeout $(E2E_TIMEOUT) ./deploy/drills/

e2e-clean:
	@$(E2E_CLEAN)

# bench runs the benchmarks against local clusters and the peers built from
# the Go module proxy, and rewrites the generated parts of docs/benchmarks.md
# and docs/benchmarks/*.png (bench/run.sh). About 25 minutes on two cores;
# BENCH_QUICK=1 makes it a smoke run of a few minutes.
.PHONY: bench
bench:
	GO=$(GO) bash bench/run.sh
