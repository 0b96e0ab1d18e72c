package hostrunner

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/server"
	hostclient "github.com/openflynn/flynn/host/client"
	"github.com/openflynn/flynn/pkg/httpjson"
)

var _ server.HostLister = (*Runner)(nil)

// listTimeout bounds each host's status call when listing hosts: a person
// waits for the list, and a host that takes longer is as good as gone.
const listTimeout = 2 * time.Second

// Hosts lists every host registered in discoverd, asking each for its
// status at once; one that does not answer within listTimeout is listed
// as unreachable, with the address it registered from.
func (r *Runner) Hosts(ctx context.Context) ([]*controller.Host, error) {
	insts, err := r.disc.Instances(ctx, HostService)
	if err != nil && !httpjson.IsNotFound(err) {
		return nil, fmt.Errorf("find hosts: %w", err)
	}
	hosts := make([]*controller.Host, 0, len(insts))
	var wg sync.WaitGroup
	for _, inst := range insts {
		id := inst.Meta["id"]
		if id == "" {
			continue
		}
		addr, _, err := net.SplitHostPort(inst.Addr)
		if err != nil {
			addr = inst.Addr
		}
		h := &controller.Host{ID: id, Addr: addr, Status: controller.HostUnreachable}
		hosts = append(hosts, h)
		c := hostclient.New("http://"+inst.Addr, r.key)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, listTimeout)
			defer cancel()
			st, err := c.Status(sctx)
			if err != nil {
				h.Error = err.Error()
				return
			}
			h.Status, h.Jobs = controller.HostUp, activeJobs(st)
			if st.ExternalIP != "" {
				h.Addr = st.ExternalIP
			}
		}()
	}
	wg.Wait()
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].ID < hosts[j].ID })
	return hosts, nil
}
