// Command testjob is the program inside flynn-host's test image. Its first
// argument picks what it does; see usage.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const usage = `testjob echo WORDS… | stderr WORDS… | env NAMES… | serve [DELAY_MS] | sleep | ignore-term | exit N | cat | write FILE TEXT | read FILE`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "echo":
		fmt.Println(strings.Join(args, " "))
	case "stderr":
		fmt.Fprintln(os.Stderr, strings.Join(args, " "))
	case "env":
		for _, name := range args {
			fmt.Printf("%s=%s\n", name, os.Getenv(name))
		}
	case "serve":
		if len(args) > 0 {
			ms, _ := strconv.Atoi(args[0])
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		port := os.Getenv("PORT")
		fmt.Println("serving on", port)
		http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "port=%s\n", port) })
		go func() {
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, syscall.SIGTERM)
			<-ch
			fmt.Println("got SIGTERM")
			os.Exit(0)
		}()
		if err := http.ListenAndServe(os.Getenv("EXTERNAL_IP")+":"+port, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "sleep":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		fmt.Println("sleeping")
		<-ch
		fmt.Println("got SIGTERM")
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ignoring SIGTERM")
		for {
			time.Sleep(time.Hour)
		}
	case "exit":
		n, _ := strconv.Atoi(firstOr(args, "0"))
		fmt.Fprintln(os.Stderr, "exiting with", n)
		os.Exit(n)
	case "cat":
		_, _ = io.Copy(os.Stdout, os.Stdin)
	case "write":
		if err := os.WriteFile(args[0], []byte(args[1]), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "read":
		b, err := os.ReadFile(args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(string(b))
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
}

func firstOr(args []string, def string) string {
	if len(args) > 0 {
		return args[0]
	}
	return def
}
