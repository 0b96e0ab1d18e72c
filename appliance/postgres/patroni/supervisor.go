// Package patroni is flynn-postgres: one instance of Flynn's highly
// available Postgres appliance (see package postgres). It runs Patroni,
// which runs Postgres and, with the other instances, elects the primary
// through the cluster's etcd, and it follows what Patroni makes of the
// instance so that discoverd names the primary alone:
//
//	Run ─► etcd endpoints (discoverd) ─► patroni.yml, etcd TLS files ─► patroni ─► postgres
//	 │                                                                     ▲
//	 └─ follower: GET /primary every CheckInterval ───────────────────────┘
//	       primary ─► provision (passwords, databases) ─► register "postgres"
//	       replica ─► register "postgres-replicas"
//	       neither ─► deregister
//
// Failover is Patroni's: when the primary's leader key lapses (ttl 20s)
// the synchronous standby takes it and promotes itself; its follower then
// registers it as the primary. Run ends with an error when Patroni exits,
// for flynn-host to start the job again.
package patroni

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/openflynn/flynn/appliance/postgres"
	"github.com/openflynn/flynn/discoverd"
	"github.com/openflynn/flynn/discoverd/client"
	"github.com/openflynn/flynn/discoverd/store"
)

// Run runs the instance until ctx ends, when it deregisters, stops Patroni
// (and with it Postgres) and returns nil; or until Patroni exits, when it
// returns an error.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	lay := newLayout(cfg.DataDir)
	own, err := ownerFor(cfg.User)
	if err != nil {
		return err
	}
	disc := client.New(cfg.DiscoverdURL, cfg.ClusterKey)
	disc.Logger = logger.With("component", "discoverd-client")

	endpoints := cfg.EtcdEndpoints
	if len(endpoints) == 0 {
		if endpoints, err = etcdEndpoints(ctx, disc, logger); err != nil {
			return err
		}
	}
	etcd, err := parseEtcdEndpoints(endpoints)
	if err != nil {
		return err
	}
	if err := writeFiles(cfg, lay, own, etcd); err != nil {
		return err
	}

	cmd := patroniCommand(cfg, lay, own)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start patroni: %w", err)
	}
	exited := waitFor(cmd)
	apiAddr := net.JoinHostPort(cfg.ExternalIP, strconv.Itoa(cfg.APIPort))
	pgAddr := net.JoinHostPort(cfg.ExternalIP, strconv.Itoa(cfg.Port))
	logger.Info("patroni started", "pid", cmd.Process.Pid, "member", cfg.Member, "postgres", pgAddr, "rest_api", apiAddr,
		"etcd", etcd.Hosts, "data_dir", lay.PGData, "user", own.name)
	if cfg.Started != nil {
		cfg.Started(cmd.Process.Pid)
	}

	httpClient := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer httpClient.CloseIdleConnections()
	meta := map[string]string{postgres.MetaMember: cfg.Member}
	if cfg.JobID != "" {
		meta[postgres.MetaJobID] = cfg.JobID
	}
	if cfg.HostID != "" {
		meta[postgres.MetaHostID] = cfg.HostID
	}
	prov := &provisioner{
		socketDir:           lay.Home,
		port:                cfg.Port,
		password:            cfg.Password,
		replicationPassword: cfg.ReplicationPassword,
		databases:           cfg.Databases,
	}
	f := &follower{
		probe:     &prober{url: "http://" + apiAddr, http: httpClient},
		registry:  discoverdRegistry{disc},
		instance:  discoverd.Instance{Addr: pgAddr, Proto: "tcp", Meta: meta},
		provision: prov.provision,
		interval:  cfg.CheckInterval,
		logger:    logger,
	}
	fctx, stopFollower := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { f.run(fctx) })
	// The follower deregisters before Patroni stops: clients leave a
	// primary that is about to go before it refuses them.
	defer func() { stopFollower(); wg.Wait() }()

	select {
	case err := <-exited:
		if err == nil {
			err = errors.New("exit status 0")
		}
		return fmt.Errorf("patroni exited: %w", err)
	case <-ctx.Done():
	}
	stopFollower()
	wg.Wait()
	logger.Info("stopping patroni")
	if err := stopPatroni(cmd, exited, cfg.StopTimeout); err != nil {
		logger.Warn("patroni stopped", "err", err)
	} else {
		logger.Info("patroni stopped")
	}
	return nil
}

// etcdEndpoints asks discoverd for the etcd members' client URLs until it
// answers or ctx ends: at a node's start discoverd may come up after
// flynn-postgres.
func etcdEndpoints(ctx context.Context, disc *client.Client, logger *slog.Logger) ([]string, error) {
	delay := 500 * time.Millisecond
	for warned := false; ; {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		m, err := disc.EtcdMembers(rctx)
		cancel()
		if err == nil {
			if urls := m.ClientURLs(); len(urls) > 0 {
				return urls, nil
			}
			err = errors.New("discoverd lists no etcd member that serves")
		}
		if !warned {
			logger.Warn("find etcd through discoverd; trying again", "discoverd", disc.URL(), "err", err)
			warned = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("find etcd through discoverd %s: %w", disc.URL(), err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// stopPatroni asks Patroni to stop (it stops Postgres, and a primary hands
// the leader key over) and waits for it, killing it after timeout.
func stopPatroni(cmd *exec.Cmd, exited <-chan error, timeout time.Duration) error {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-exited:
		return err
	case <-t.C:
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // its process group
	<-exited
	return fmt.Errorf("killed after %s", timeout)
}

// owner is the user Patroni and Postgres run as and own their files as.
type owner struct {
	name     string
	uid, gid int
	// setuid is set when flynn-postgres runs as root: it then runs
	// Patroni as the user and gives it its files.
	setuid bool
	// localUsers are the operating system users that connect to Postgres
	// over its socket as the superuser: the owner and flynn-postgres.
	localUsers []string
}

// ownerFor returns the owner: name when flynn-postgres runs as root
// (Patroni refuses to), else flynn-postgres's own user.
func ownerFor(name string) (*owner, error) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("current user: %w", err)
		}
		return &owner{name: u.Username, uid: os.Geteuid(), gid: os.Getegid(), localUsers: []string{u.Username}}, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("user Postgres runs as: %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q", name, u.Uid)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q", name, u.Gid)
	}
	if uid == 0 {
		return nil, fmt.Errorf("user %s is root, which Patroni refuses to run as", name)
	}
	root, err := user.LookupId("0")
	rootName := "root"
	if err == nil {
		rootName = root.Username
	}
	return &owner{name: name, uid: uid, gid: gid, setuid: true, localUsers: []string{name, rootName}}, nil
}

// writeFiles makes the instance's directory and writes Patroni's
// configuration and etcd TLS files, readable by the owner alone.
func writeFiles(cfg Config, lay layout, own *owner, etcd etcdHosts) error {
	// The owner passes through the data directory (a volume, root's) to
	// its own.
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return err
	}
	if err := ownDir(lay.Home, own, true); err != nil {
		return err
	}
	// Patroni runs initdb or pg_basebackup into an empty data directory
	// of the right owner and mode.
	if err := ownDir(lay.PGData, own, false); err != nil {
		return err
	}
	files := map[string][]byte{}
	if etcd.Protocol == "https" {
		ca, cert, key, err := store.ClientPEM(cfg.ClusterKey, "flynn-postgres "+cfg.Member)
		if err != nil {
			return err
		}
		files[lay.CAFile], files[lay.CertFile], files[lay.KeyFile] = ca, cert, key
	}
	yml, err := patroniYAML(cfg, lay, etcd, own.localUsers)
	if err != nil {
		return fmt.Errorf("patroni.yml: %w", err)
	}
	files[lay.ConfigFile] = yml
	for path, data := range files {
		if err := writeOwned(path, data, own); err != nil {
			return err
		}
	}
	return nil
}

// ownDir makes dir, mode 0700 and the owner's. With deep, a directory
// another user owns (a volume kept from an image whose postgres user had
// another uid) is given to the owner with all it holds.
func ownDir(dir string, own *owner, deep bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	if !own.setuid {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == own.uid && int(st.Gid) == own.gid {
		return nil
	}
	if !deep {
		return os.Lchown(dir, own.uid, own.gid)
	}
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, own.uid, own.gid)
	})
}

// writeOwned replaces path with data, mode 0600 and the owner's.
func writeOwned(path string, data []byte, own *owner) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if own.setuid {
		if err := os.Lchown(tmp, own.uid, own.gid); err != nil {
			return err
		}
	}
	return os.Rename(tmp, path)
}

// patroniCommand is Patroni for cfg: its only argument the configuration
// file (no secret in the process list), its environment nothing of
// flynn-postgres's (which holds the passwords and the cluster key), as
// the owner, in a process group of its own, and told to stop should
// flynn-postgres die.
func patroniCommand(cfg Config, lay layout, own *owner) *exec.Cmd {
	cmd := exec.Command(cfg.Patroni, lay.ConfigFile)
	cmd.Dir = lay.Home
	cmd.Env = []string{
		"PATH=" + cfg.BinDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + lay.Home,
		"USER=" + own.name,
		"LOGNAME=" + own.name,
		"LANG=C.UTF-8",
	}
	if tz, ok := os.LookupEnv("TZ"); ok {
		cmd.Env = append(cmd.Env, "TZ="+tz)
	}
	cmd.Stdout, cmd.Stderr = cfg.Output, cfg.Output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if own.setuid {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(own.uid), Gid: uint32(own.gid), Groups: []uint32{}}
	}
	return cmd
}
