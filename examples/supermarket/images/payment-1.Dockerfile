# supermarket/payment:1: the payment gateway API (calls inventory).
# Built by build-images.sh (examples/supermarket): berth build -f images/payment-1.Dockerfile images
FROM supermarket/busybox:1 AS files
ENV PATH=/bin
COPY . /in/
RUN --network=none sh /in/common/assemble payment 1 /out 0

# Two layers: busybox and the service's own files.
FROM supermarket/busybox:1
ENV PATH=/bin
WORKDIR /
COPY --from=files /out/ /
EXPOSE 80
HEALTHCHECK --interval=1s --timeout=1s --retries=2 \
  CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1/health"]
LABEL org.opencontainers.image.title="supermarket payment" \
      org.opencontainers.image.version="1"
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
