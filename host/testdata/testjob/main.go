// Command testjob is the program inside flynn-host's test image. Its first
// argument picks what it does; see usage.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const usage = `testjob echo WORDS… | stderr WORDS… | env NAMES… | serve [DELAY_MS] | sleep | ignore-term | exit N | cat | write FILE TEXT | read FILE
        | whoami | bind PORT | dial-gateway PORT | fill FILE MIB | long-line BYTES
        | flood BYTES | spin MIB`

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
		// Every interface of the job's own namespace: EXTERNAL_IP is the
		// node's address, which is not the job's off the host network.
		if err := http.ListenAndServe(":"+port, nil); err != nil {
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
	case "whoami":
		fmt.Printf("uid=%d gid=%d\n", os.Getuid(), os.Getgid())
	case "bind":
		ln, err := net.Listen("tcp", ":"+args[0])
		if err != nil {
			fmt.Println("bind:", err)
			os.Exit(1)
		}
		ln.Close()
		fmt.Println("bound", args[0])
	case "dial-gateway":
		gw, err := defaultGateway()
		if err != nil {
			fmt.Println("gateway:", err)
			os.Exit(1)
		}
		addr := net.JoinHostPort(gw, args[0])
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			fmt.Println("dial", addr+":", err)
			os.Exit(1)
		}
		conn.Close()
		fmt.Println("connected to", addr)
	case "fill":
		mib, _ := strconv.Atoi(args[1])
		if err := fill(args[0], mib); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("wrote", mib, "MiB; sleeping")
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		<-ch
	case "long-line":
		n, _ := strconv.Atoi(args[0])
		longLine(n)
	case "flood":
		// A long line, a line after it, then running on: the log must
		// follow the output past the flood while the job lives.
		n, _ := strconv.Atoi(args[0])
		longLine(n)
		fmt.Println("\nflood done")
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		<-ch
	case "spin":
		// Holds MIB MiB of memory and keeps a CPU busy until SIGTERM,
		// for the tests of a job's stats.
		mib, _ := strconv.Atoi(firstOr(args, "0"))
		held := make([]byte, mib<<20)
		for i := range held {
			held[i] = byte(i)
		}
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		fmt.Println("spinning with", mib, "MiB")
		for {
			select {
			case <-ch:
				runtime.KeepAlive(held)
				fmt.Println("got SIGTERM")
				return
			default:
			}
		}
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
}

// longLine writes n bytes of x without a newline.
func longLine(n int) {
	chunk := []byte(strings.Repeat("x", 64<<10))
	for n > 0 {
		k := min(n, len(chunk))
		if _, err := os.Stdout.Write(chunk[:k]); err != nil {
			os.Exit(1)
		}
		n -= k
	}
}

// defaultGateway reads the default route's gateway from /proc/net/route:
// the node, as a job on the app network reaches it.
func defaultGateway() (string, error) {
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 3 || f[1] != "00000000" {
			continue
		}
		v, err := strconv.ParseUint(f[2], 16, 32)
		if err != nil {
			return "", err
		}
		// Little-endian, as the kernel prints it on x86 and arm.
		return net.IPv4(byte(v), byte(v>>8), byte(v>>16), byte(v>>24)).String(), nil
	}
	return "", fmt.Errorf("no default route")
}

// fill writes mib MiB to file.
func fill(file string, mib int) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	for range mib {
		if _, err := f.Write(chunk); err != nil {
			return err
		}
	}
	return f.Sync()
}

func firstOr(args []string, def string) string {
	if len(args) > 0 {
		return args[0]
	}
	return def
}
