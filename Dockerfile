# syntax=docker/dockerfile:1
# LlmGateway: docker build -t llm-gateway . && docker run -p 8080:8080 llm-gateway
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
# appsettings.json binds to localhost for a developer's machine; in a container the gateway listens on
# every interface. URLS (no prefix) is read after appsettings.json, so it wins.
ENV URLS=http://+:8080
EXPOSE 8080
# The image's non-root user `app` (uid 1654).
USER $APP_UID
# The image has no curl or wget: bash's /dev/tcp asks /health/live and checks for a 200.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health/live HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["dotnet", "LlmGateway.dll"]
