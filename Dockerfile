# mixio and the demo's guests in one image. Multi-stage: the build stage compiles the `mixio`
# binary and the guests (Rust for wasm32-wasip2, Python with componentize-py, JavaScript with
# componentize-js); the runtime stage holds only the binary, the guests and the static page.
#
#     docker build -t mixio .
#     docker run -p 3000:3000 -p 9090:9090 mixio
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3-venv \
    && rm -rf /var/lib/apt/lists/*
# componentize-js needs Node.js 20 or later (Debian 12 has 18): Node.js 22 from its own image.
COPY --from=node:22-bookworm-slim /usr/local/bin/node /usr/local/bin/node
COPY --from=node:22-bookworm-slim /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
RUN cargo build --release --bin mixio \
    && cargo build --release --target wasm32-wasip2 -p food-delivery -p kitchen \
    && sh guest-sdk/python/build.sh guests/food-delivery-py target/wasm32-wasip2/release/food_delivery_py.wasm \
    && sh guest-sdk/js/build.sh guests/food-delivery-js target/wasm32-wasip2/release/food_delivery_js.wasm \
    && mkdir -p /out/guests && cp target/release/mixio /out/ \
    && cp target/wasm32-wasip2/release/food_delivery.wasm target/wasm32-wasip2/release/kitchen.wasm \
          target/wasm32-wasip2/release/food_delivery_py.wasm target/wasm32-wasip2/release/food_delivery_js.wasm \
          /out/guests/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/mixio --create-home mixio
COPY --from=build /out/mixio /usr/local/bin/mixio
# The repository's layout: the demo's manifest finds its guests and page where it expects them.
WORKDIR /app
COPY --from=build /out/guests target/wasm32-wasip2/release
COPY mixio.toml ./
COPY static static
RUN mkdir .mixio && chown mixio .mixio
USER mixio
ENV MIXIO_CACHE_DIR=/var/lib/mixio/cache
EXPOSE 3000 9090
ENTRYPOINT ["mixio"]
CMD ["serve", "/app/mixio.toml", "--listen", "0.0.0.0:3000", "--admin-listen", "0.0.0.0:9090"]
