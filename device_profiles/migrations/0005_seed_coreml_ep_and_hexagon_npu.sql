-- Profile schema version 4 -> 5: seed rows, no schema change (a new database runs this after
-- seed.sql). Each insert is guarded to change only a database seeded with the spec rows it builds
-- on, and never to supersede a version someone uploaded.
--
-- iphone-15-pro version 2: what ONNX Runtime's CoreML execution provider runs. Version 1 (runtime
-- 'coreml') priced int8 at the Neural Engine's 35 TOPS, which an ONNX file cannot reach through
-- that provider: it has no QuantizeLinear, DequantizeLinear or quantized-op builder.
INSERT INTO devices (id, version, name, vendor, soc, os, cpu, cpu_cores, simd, accelerator, ram_bytes,
                     app_memory_budget_bytes, memory_bandwidth_bytes_per_s, runtime, runtime_version, threads,
                     op_overhead_us, source, derivation, provenance)
SELECT id, 2, name, vendor, soc, os, cpu, cpu_cores, simd, accelerator, ram_bytes, app_memory_budget_bytes,
       memory_bandwidth_bytes_per_s, 'onnxruntime-coreml', '1.29', threads, op_overhead_us,
       source || '; ONNX Runtime CoreML execution provider documentation (ModelFormat MLProgram or NeuralNetwork, MLComputeUnits CPUAndNeuralEngine / CPUAndGPU / CPUOnly / ALL), https://onnxruntime.ai/docs/execution-providers/CoreML-ExecutionProvider.html; ONNX Runtime source, onnxruntime/core/providers/coreml/builders/op_builder_factory.cc (the operators the provider converts: no QuantizeLinear, DequantizeLinear, QLinearConv or other quantized op) and builders/impl/base_op_builder.cc (inputs float32, or float16 in ML Program format only), https://github.com/microsoft/onnxruntime',
       'Runtime target: ONNX Runtime 1.29''s CoreML execution provider, ModelFormat=MLProgram, MLComputeUnits=CPUAndNeuralEngine: it converts the ONNX graph to a Core ML ML Program on the phone. It converts no QuantizeLinear, DequantizeLinear or quantized op and takes float32 or float16 tensors only, so in a QDQ file the Q/DQ nodes run on the CPU provider and the layers whose weights they dequantize leave the Neural Engine with them (their weight is no longer a constant). This version therefore offers fp16 only: weights stored fp16, computed in fp16 by the Neural Engine (which has no fp32); the int8 row of version 1 is not carried over. Everything else as version 1: ' || derivation,
       'spec'
FROM devices
WHERE id = 'iphone-15-pro' AND version = 1 AND provenance = 'spec' AND runtime = 'coreml'
  AND NOT EXISTS (SELECT 1 FROM devices WHERE id = 'iphone-15-pro' AND version > 1);

INSERT INTO capabilities (device_id, device_version, op_kind, weight_bits, activation_bits, sparsity, native,
                          peak_ops_per_s, efficiency, source, derivation, provenance)
SELECT device_id, 2, op_kind, weight_bits, activation_bits, sparsity, native, peak_ops_per_s, efficiency, source,
       derivation, 'spec'
FROM capabilities
WHERE device_id = 'iphone-15-pro' AND device_version = 1 AND weight_bits = 16 AND activation_bits = 16
  AND EXISTS (SELECT 1 FROM devices WHERE id = 'iphone-15-pro' AND version = 2 AND runtime = 'onnxruntime-coreml'
                                      AND provenance = 'spec')
  AND NOT EXISTS (SELECT 1 FROM capabilities WHERE device_id = 'iphone-15-pro' AND device_version = 2);

-- galaxy-s24-npu: the same phone's Hexagon NPU through ONNX Runtime's QNN execution provider.
INSERT INTO devices (id, version, name, vendor, soc, os, cpu, cpu_cores, simd, accelerator, ram_bytes,
                     app_memory_budget_bytes, memory_bandwidth_bytes_per_s, runtime, runtime_version, threads,
                     op_overhead_us, source, derivation, provenance)
SELECT 'galaxy-s24-npu', 1, 'Samsung Galaxy S24 (Snapdragon 8 Gen 3 for Galaxy), Hexagon NPU', vendor, soc, os, cpu,
       cpu_cores, simd, 'Qualcomm Hexagon NPU (HTP)', ram_bytes, app_memory_budget_bytes, memory_bandwidth_bytes_per_s,
       'onnxruntime-qnn', '1.29', 1, 10.0,
       'Liliputing, Qualcomm''s Snapdragon 8 Gen 3 (Hexagon NPU with 98% faster speed and 40% improvement in efficiency, than the 8 Gen 2''s; up to 24 GB LPDDR5x-4800), https://liliputing.com/qualcomms-snapdragon-8-gen-3-brings-big-boost-in-cpu-graphics-and-ai-performance/; Qualcomm Hexagon NPU, Hot Chips 2023 (tensor unit: Int 4, 8, 16 and Float 16; vector unit: Int 8, 16, 32 and Float 16, 32), as mirrored at https://www.scribd.com/document/797390634/HC2023-Qualcomm-Hexagon-NPU and summarised by Chips and Cheese, https://chipsandcheese.com/2023/10/04/qualcomms-hexagon-dsp-and-now-npu/; Windows Central, Snapdragon X Elite specifications (Hexagon NPU, 45 TOPS), https://www.windowscentral.com/hardware/laptops/what-is-snapdragon-x-elite; Edge AI and Vision Alliance, Dense TOPS vs sparse TOPS (Qualcomm''s TOPS figures are dense), https://www.edge-ai-vision.com/2025/07/dense-tops-vs-sparse-tops-whats-the-difference; ONNX Runtime QNN execution provider documentation (the HTP backend runs quantized models; uint8 and uint16 activations; enable_htp_fp16_precision runs float models in fp16), https://onnxruntime.ai/docs/execution-providers/QNN-ExecutionProvider.html; ONNX Runtime quantization tools, onnxruntime/python/tools/quantization/execution_providers/qnn/quant_config.py (get_qnn_qdq_config: uint8 or uint16 activations, every op but Cast quantized, int32 biases at input scale x weight scale), https://github.com/microsoft/onnxruntime; the galaxy-s24 row''s sources for the phone (CPU, RAM, LPDDR5X-9600 x 64-bit = 76.8 GB/s)',
       'Runtime target: ONNX Runtime 1.29''s QNN execution provider on the HTP, exported whole-graph QDQ (the qnn flavour): the HTP runs quantized node units, and float ones in fp16 (enable_htp_fp16_precision); anything else falls back to the CPU. threads = 1 (the NPU is one device). cpu, cpu_cores, simd, RAM, app_memory_budget and memory_bandwidth are the galaxy-s24 row''s (the same phone). op_overhead_us = 10 ASSUMED. Qualcomm publishes no TOPS figure for the Snapdragon 8 Gen 3 NPU, only that it is 98% faster than the 8 Gen 2''s (a vendor claim), so every peak below is ASSUMED from the nearest published Hexagon figure.',
       'spec'
FROM devices
WHERE id = 'galaxy-s24' AND version = 1 AND provenance = 'spec'
  AND NOT EXISTS (SELECT 1 FROM devices WHERE id = 'galaxy-s24-npu');

INSERT INTO capabilities (device_id, device_version, op_kind, weight_bits, activation_bits, sparsity, native,
                          peak_ops_per_s, efficiency, source, derivation, provenance)
SELECT 'galaxy-s24-npu', 1, '*', column1, column2, 'dense', 1, column3, 0.3,
       'Windows Central, Snapdragon X Elite specifications (Hexagon NPU, 45 TOPS), https://www.windowscentral.com/hardware/laptops/what-is-snapdragon-x-elite; Edge AI and Vision Alliance, Dense TOPS vs sparse TOPS (Qualcomm''s TOPS figures are dense), https://www.edge-ai-vision.com/2025/07/dense-tops-vs-sparse-tops-whats-the-difference; Qualcomm Hexagon NPU, Hot Chips 2023 (tensor unit: Int 4, 8, 16 and Float 16), https://www.scribd.com/document/797390634/HC2023-Qualcomm-Hexagon-NPU; Liliputing, Snapdragon 8 Gen 3 (NPU 98% faster than the 8 Gen 2''s), https://liliputing.com/qualcomms-snapdragon-8-gen-3-brings-big-boost-in-cpu-graphics-and-ai-performance/',
       column4, 'spec'
FROM (VALUES
  (8, 8, 45000000000000.0,
   'int8 peak = 45e12 ops/s - ASSUMED, not a spec of this phone: Qualcomm publishes no NPU TOPS for the Snapdragon 8 Gen 3; 45 dense TOPS is its figure for the Snapdragon X Elite''s Hexagon NPU (a laptop chip of the 8 Gen 2''s Hexagon generation), taken as is: neither scaled up by the 98%-faster claim nor down for a phone''s power budget. Efficiency 0.30 ASSUMED.'),
  (8, 16, 22500000000000.0,
   'int8 weights with uint16 activations = int8 peak / 2 = 22.5e12 ops/s - ASSUMED: the Hot Chips 2023 slides list 16-bit integers among the tensor unit''s types without a rate; a 16-bit operand is taken as two 8-bit passes. Efficiency 0.30 ASSUMED.'),
  (16, 16, 22500000000000.0,
   'fp16 = int8 peak / 2 = 22.5e12 ops/s - ASSUMED: the Hot Chips 2023 slides list fp16 on the tensor unit without a rate. Efficiency 0.30 ASSUMED.'))
WHERE EXISTS (SELECT 1 FROM devices WHERE id = 'galaxy-s24-npu' AND version = 1 AND provenance = 'spec'
                                      AND runtime = 'onnxruntime-qnn')
  AND NOT EXISTS (SELECT 1 FROM capabilities WHERE device_id = 'galaxy-s24-npu' AND device_version = 1);

PRAGMA user_version = 5;
