// Package postgres is Flynn's highly available Postgres appliance: the
// names its parts agree on. The appliance is three things:
//
//   - flynn-postgres (package patroni): one per node, it runs Patroni,
//     which runs Postgres and elects the primary through the cluster's
//     etcd (the one discoverd embeds). The other instances stream from
//     the primary, one of them synchronously, so that a commit the
//     primary acknowledged is on a second node when there are two.
//     flynn-postgres registers its instance in discoverd service Service
//     while, and only while, it is the primary, so leader.postgres.discoverd
//     and the router's TCP route reach the primary, and clients reconnect
//     there after a failover.
//   - flynn-postgres-api (package api): the provider that creates a
//     database and a user of its own for an app.
//   - the platform's own databases (controller, blobstore), which
//     flynn-postgres creates once it is the primary.
//
// With two nodes:
//
//	etcd (in discoverd) ◄── leader key ── node A: flynn-postgres ─► patroni ─► postgres (primary)
//	                                          │ registers while primary          │ synchronous
//	discoverd "postgres" ◄────────────────────┘                                  ▼ streaming
//	                                      node B: flynn-postgres ─► patroni ─► postgres (replica)
package postgres

// Service is the discoverd service the primary alone is registered in:
// platform components connect to leader.postgres.discoverd, apps through
// the router's TCP route to it.
const Service = "postgres"

// ReplicaService is the discoverd service streaming replicas are
// registered in, for read-only use.
const ReplicaService = "postgres-replicas"

// Scope is the name of the Patroni cluster: its keys in etcd are under
// Namespace + Scope.
const Scope = "flynn-postgres"

// Namespace is the etcd key prefix of Patroni's state.
const Namespace = "/flynn/"

// SuperUser is the Postgres superuser, whose password is the appliance's
// (EnvPassword).
const SuperUser = "postgres"

// ReplicationUser is the role replicas stream with.
const ReplicationUser = "replicator"

// Environment variables of a flynn-postgres job's release, besides those
// flynn-host gives every job (PORT_0 for Postgres, PORT_1 for Patroni's
// REST API, EXTERNAL_IP, FLYNN_HOST_ID, FLYNN_DISCOVERD_URL) and
// FLYNN_CLUSTER_KEY.
const (
	// EnvPassword is the superuser's password.
	EnvPassword = "FLYNN_POSTGRES_PASSWORD"
	// EnvReplicationPassword is the replication user's password.
	EnvReplicationPassword = "FLYNN_REPLICATION_PASSWORD"
	// EnvDatabases lists the databases to create when missing, separated
	// by spaces or commas ("controller blobstore").
	EnvDatabases = "FLYNN_POSTGRES_DATABASES"
)

// Metadata of the instances flynn-postgres registers in discoverd.
const (
	// MetaRole is RolePrimary or RoleReplica.
	MetaRole = "role"
	// MetaMember is the instance's member name in the Patroni cluster.
	MetaMember = "member"
	// MetaJobID and MetaHostID name the job and its node.
	MetaJobID  = "job_id"
	MetaHostID = "host_id"
)

// Roles of an instance.
const (
	RolePrimary = "primary"
	RoleReplica = "replica"
)
