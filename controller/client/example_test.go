package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/openflynn/flynn/controller"
	"github.com/openflynn/flynn/controller/client"
)

// Create an app and a release of it, deploy the release, and list the
// apps.
func Example() {
	url, stop := exampleController()
	defer stop()
	ctx := context.Background()
	c := client.New(url, "cluster-key")

	app := &controller.App{Name: "web"}
	if err := c.CreateApp(ctx, app); err != nil {
		log.Fatal(err)
	}
	artifact := &controller.Artifact{Type: controller.ArtifactTypeDocker, URI: "example/web:v1"}
	if err := c.CreateArtifact(ctx, artifact); err != nil {
		log.Fatal(err)
	}
	rel := &controller.Release{
		AppID:      app.ID,
		ArtifactID: artifact.ID,
		Processes: map[string]controller.ProcessType{
			"web": {Cmd: []string{"serve"}, Ports: []controller.Port{{Proto: "tcp"}}},
		},
	}
	if err := c.CreateRelease(ctx, rel); err != nil {
		log.Fatal(err)
	}
	fmt.Println("release version", rel.Version)
	if _, err := c.SetAppRelease(ctx, app.ID, rel.ID); err != nil {
		log.Fatal(err)
	}

	apps, err := c.Apps(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range apps {
		fmt.Println("app", a.Name, "release is current:", a.ReleaseID == rel.ID)
	}
	// Output:
	// release version 1
	// app web release is current: true
}
