# syntax=docker/dockerfile:1
# LlmGateway: docker build -t llm-gateway . && docker run -p 127.0.0.1:8080:8080 llm-gateway
# (podman: podman build --format docker -t llm-gateway . ; the OCI format drops HEALTHCHECK).
# (or `docker compose up` for the gateway with Redis, Prometheus and Grafana).

# --- build ---
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore first, from the project files alone, so this layer stays cached until a dependency changes.
COPY Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/LlmGateway/LlmGateway.csproj src/LlmGateway/
RUN dotnet restore src/LlmGateway/LlmGateway.csproj
COPY appsettings.json ./
COPY src/LlmGateway/ src/LlmGateway/
RUN dotnet publish src/LlmGateway/LlmGateway.csproj -c Release -o /app --no-restore

# --- runtime ---
FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
WORKDIR /app
COPY --from=build /app ./
COPY deploy/docker/healthcheck.sh /usr/local/bin/gateway-healthcheck
# In a container the gateway listens on every interface, port 8080, through .NET's standard variable
# (the aspnet image's own default, stated here so it is visibly the gateway's). ASPNETCORE_URLS or
# ASPNETCORE_HTTP_PORTS given at `docker run` override it, and the HEALTHCHECK follows them.
ENV ASPNETCORE_HTTP_PORTS=8080
EXPOSE 8080
# The image's non-root user `app` (uid 1654).
USER $APP_UID
# GET /health/live on the configured port, bounded by its own timeout (deploy/docker/healthcheck.sh).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["bash", "/usr/local/bin/gateway-healthcheck"]
ENTRYPOINT ["dotnet", "LlmGateway.dll"]
