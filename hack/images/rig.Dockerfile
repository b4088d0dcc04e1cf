# Images the real-node rig (hack/real-node.sh) needs beside the chart's own, all from binaries in the
# context's bin/ (hack/images.sh puts them there). None of them is shipped:
#   pause          containerd's pod sandbox image (hack/images/pause.c, built statically)
#   busybox        the app and Job image of the real-node tests (Debian's busybox-static)
#   csi-registrar  kubelet plugin registration for the CSI plugin (hack/tools/csi-registrar: the upstream
#                  node-driver-registrar module is not served here; clusters use the upstream image)

FROM scratch AS pause
COPY bin/pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]

FROM scratch AS busybox
COPY bin/busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["sh"]

FROM scratch AS csi-registrar
COPY bin/csi-registrar /csi-node-driver-registrar
ENTRYPOINT ["/csi-node-driver-registrar"]
