// Package redis is the Redis appliance: Debian's redis-server run by the
// cluster for apps that ask for one (`flynn resource add redis`). It holds
// the names its two parts share; the parts are
//
//   - redisd, the flynn-redis binary (image "redis"): the entrypoint of a
//     Redis server job. It writes a redis.conf with the password from
//     REDIS_PASSWORD, the job's $PORT and the data directory /data, and
//     runs redis-server under it.
//   - provider, the flynn-redis-api binary (image "redis-api"): the
//     resource provider the controller calls. Each resource is an app of
//     its own, "redis-<id>", running one job of the "redis" image with a
//     named volume at /data, reached by apps through a TCP route of the
//     router.
//
// One provisioned Redis, as the controller holds it:
//
//	app redis-<id> (system app, meta flynn.resource=redis)
//	└─ release: artifact of app "redis", env REDIS_PASSWORD,
//	   process "server": port tcp → discoverd service redis-<id>,
//	   volume redis-<id>-data at /data
//	   formation server=1
//	   route tcp, router port 3000-3999 → service redis-<id>
//
// and the app using it gets REDIS_URL=redis://:<password>@redis.<domain>:<port>.
package redis

// Environment variables of the appliance.
const (
	// EnvPassword is the server's password, in the server job's env and
	// in the env the provider gives apps.
	EnvPassword = "REDIS_PASSWORD"
	// EnvURL is the URL an app connects to, redis://:<password>@host:port.
	EnvURL = "REDIS_URL"
	// EnvHost and EnvPort are the host and port of EnvURL.
	EnvHost = "REDIS_HOST"
	EnvPort = "REDIS_PORT"
)

// Names of what the provider creates in the controller.
const (
	// ProcessType is the process type of a Redis server job.
	ProcessType = "server"
	// DataDir is where the server job's volume is mounted and Redis keeps
	// its data.
	DataDir = "/data"
	// AppPrefix starts the name of every Redis app; the resource id
	// follows, and the app's discoverd service has the app's name.
	AppPrefix = "redis-"
	// MetaResource is the app meta key marking an app a provider made for
	// a resource; its value names the provider ("redis"). The provider
	// deletes no app that lacks it.
	MetaResource = "flynn.resource"
	// ResourceKind is the value of MetaResource on Redis apps.
	ResourceKind = "redis"
)

// AppName is the name of the app (and discoverd service) of resource id.
func AppName(id string) string { return AppPrefix + id }

// VolumeName is the name of the host volume holding resource id's data.
// Volumes are named per host, not per app, so the name carries the id.
func VolumeName(id string) string { return AppPrefix + id + "-data" }
