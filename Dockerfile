# One image for the Docker agent, the register step and (through Prefect's Docker storage)
# the flow runs. Python 3.9, as the data office runs it.
ARG BASE_IMAGE=python:3.9-slim
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PREFECT__BACKEND=server
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

# Flow runs use this user; give it the host user's uid so that reports in the bound folder
# belong to that user.
ARG APP_UID=1000
RUN useradd --uid "${APP_UID}" --create-home app
# This image is each flow's image too (register.py tags it): its runs are never root. The
# agent and the register step, which drive the Docker engine, run as root (compose files).
USER app

# The offline users API (`make up OFFLINE=1`): in the image, outside the flow's version.
COPY demo/ demo/
COPY agent/ agent/
COPY stack/ stack/
COPY door/ door/
COPY exporter/ exporter/
COPY register.py ./
# Last: a flow edit, the most frequent change, rebuilds this one small layer (a layer costs
# seconds on some storage drivers).
COPY flows/ flows/
