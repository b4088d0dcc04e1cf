// csi-registrar registers a CSI node plugin with kubelet, for the real-node rig (hack/real-node.sh).
//
// The upstream sidecar (github.com/kubernetes-csi/node-driver-registrar) is not served by the Go module
// proxy this machine can reach, so the rig runs this stand-in in its place, with the same flags the chart
// passes the upstream image (--csi-address, --kubelet-registration-path, --v). It does what the sidecar
// does on the node: asks the plugin for its name (CSI GetPluginInfo), serves kubelet's plugin
// registration API on <plugins_registry>/<name>-reg.sock, and answers kubelet's GetInfo with the plugin's
// name and the socket path kubelet should call. Clusters use the upstream image (csiPlugin.nodeDriverRegistrar).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	csi "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	registration "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

type registrar struct {
	registration.UnimplementedRegistrationServer
	driver   string
	endpoint string
}

func (r *registrar) GetInfo(context.Context, *registration.InfoRequest) (*registration.PluginInfo, error) {
	log.Printf("kubelet asked for the plugin's info: %s at %s", r.driver, r.endpoint)
	return &registration.PluginInfo{
		Type:              registration.CSIPlugin,
		Name:              r.driver,
		Endpoint:          r.endpoint,
		SupportedVersions: []string{"1.0.0"},
	}, nil
}

func (r *registrar) NotifyRegistrationStatus(_ context.Context, s *registration.RegistrationStatus) (*registration.RegistrationStatusResponse, error) {
	if !s.PluginRegistered {
		// As the upstream sidecar does: a refused registration ends the process, and kubelet's restart
		// of the container retries it.
		log.Fatalf("kubelet refused the registration: %s", s.Error)
	}
	log.Printf("registered with kubelet")
	return &registration.RegistrationStatusResponse{}, nil
}

// driverName asks the plugin at the unix socket `address` for its name, retrying until ctx ends.
func driverName(ctx context.Context, address string) (string, error) {
	conn, err := grpc.NewClient("unix://"+address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	client := csi.NewIdentityClient(conn)
	for {
		info, err := client.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
		if err == nil {
			return info.GetName(), nil
		}
		log.Printf("waiting for the plugin at %s: %v", address, err)
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("plugin at %s: %w", address, err)
		case <-time.After(time.Second):
		}
	}
}

func main() {
	csiAddress := flag.String("csi-address", "/csi/csi.sock", "the plugin's CSI socket, as this container sees it")
	kubeletPath := flag.String("kubelet-registration-path", "", "the plugin's CSI socket, as kubelet (on the host) sees it")
	registry := flag.String("plugin-registration-path", "/registration", "kubelet's plugins_registry directory, as this container sees it")
	flag.Int("v", 0, "log verbosity (accepted for the upstream sidecar's flags; this stand-in logs every step)")
	flag.Parse()
	if *kubeletPath == "" {
		log.Fatal("--kubelet-registration-path is required")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	name, err := driverName(ctx, *csiAddress)
	if err != nil {
		log.Fatal(err)
	}

	socket := filepath.Join(*registry, name+"-reg.sock")
	if err := os.Remove(socket); err != nil && !os.IsNotExist(err) {
		log.Fatalf("removing a stale %s: %v", socket, err)
	}
	listener, err := net.Listen("unix", socket)
	if err != nil {
		log.Fatalf("listening on %s: %v", socket, err)
	}
	server := grpc.NewServer()
	registration.RegisterRegistrationServer(server, &registrar{driver: name, endpoint: *kubeletPath})
	go func() {
		<-ctx.Done()
		server.GracefulStop()
	}()
	log.Printf("serving kubelet's registration API for %s on %s", name, socket)
	if err := server.Serve(listener); err != nil {
		log.Fatal(err)
	}
	_ = os.Remove(socket)
}
