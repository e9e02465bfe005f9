# The MLflow tracking server (docker-compose.yml service mlflow): the same MLflow as the client in pyproject.toml,
# plus the Postgres driver for its backend store and boto3 for its artifacts on MinIO (S3).
FROM ghcr.io/mlflow/mlflow:v3.17.2
RUN pip install --no-cache-dir psycopg2-binary==2.9.13 boto3==1.44.8
