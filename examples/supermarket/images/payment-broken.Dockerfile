# supermarket/payment:broken: replies "version":0 and has no /health, so its healthcheck fails (rollbacks).
# Built by build-images.sh (examples/supermarket): berth build -f images/payment-broken.Dockerfile images
FROM supermarket/busybox:1 AS files
ENV PATH=/bin
COPY . /in/
RUN --network=none sh /in/common/assemble payment 0 /out 1

# Two layers: busybox and the service's own files.
FROM supermarket/busybox:1
ENV PATH=/bin
WORKDIR /
COPY --from=files /out/ /
EXPOSE 80
HEALTHCHECK --interval=1s --timeout=1s --retries=2 \
  CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1/health"]
LABEL org.opencontainers.image.title="supermarket payment" \
      org.opencontainers.image.version="0"
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
