-- Run once by the postgres image on a fresh volume (docker-compose.yml): MLflow's backend store, beside Dagster's.
CREATE DATABASE mlflow;
