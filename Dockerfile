# triggerd image: built on Debian 12 with the same package list as `make deps`.
FROM debian:bookworm-slim AS build
WORKDIR /src
COPY scripts/ scripts/
RUN apt-get update && sh scripts/deps.sh
COPY . .
RUN make all && make install PREFIX=/usr DESTDIR=/out

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
	librdkafka1 libpaho-mqtt1.3 libhiredis0.14 libcurl4 libconfig9 libmicrohttpd12 \
	libjansson4 libsqlite3-0 tzdata ca-certificates python3 nodejs \
	&& rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /
RUN mkdir -p /var/lib/triggerd
EXPOSE 7070 7071
VOLUME /var/lib/triggerd
ENTRYPOINT ["/usr/bin/triggerd"]
CMD ["-c", "/etc/triggerd/triggerd.cfg", "--state-dir", "/var/lib/triggerd", \
     "--webhook-listen", "0.0.0.0:7070", "--admin-listen", "0.0.0.0:7071"]
