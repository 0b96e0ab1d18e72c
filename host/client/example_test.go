package client_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/openflynn/flynn/host"
	"github.com/openflynn/flynn/host/client"
)

// Run a job on a host, list the host's jobs, and read its status.
func Example() {
	url, stop := exampleHost("host1")
	defer stop()
	ctx := context.Background()
	c := client.New(url, "cluster-key")

	job := &host.Job{
		ID:       "host1-web",
		Artifact: "example/web",
		Config:   host.JobConfig{Args: []string{"serve", "--port", "$PORT"}, Ports: []host.Port{{Proto: "tcp"}}},
	}
	if _, err := c.AddJob(ctx, job); err != nil {
		log.Fatal(err)
	}

	jobs, err := c.ListJobs(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, j := range jobs {
		fmt.Println("job", j.Job.ID, strings.Join(j.Job.Config.Args, " "))
	}

	st, err := c.Status(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("host %s: ports %s, %d free\n", st.ID, st.PortRange, st.PortsFree)

	if _, err := c.StopJob(ctx, job.ID); err != nil {
		log.Fatal(err)
	}
	// Output:
	// job host1-web serve --port $PORT
	// host host1: ports 55000-55009, 9 free
}
