"""TFLite (LiteRT) stage: conversion, Android metadata, evaluation and benchmarking."""
