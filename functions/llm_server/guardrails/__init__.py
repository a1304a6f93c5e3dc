"""The guardrail every turn passes through (BEDROCK_GUARDRAIL): an Amazon Bedrock Guardrail.

`bedrock.py` calls bedrock-runtime's ApplyGuardrail on a turn's input or output (for the
providers that do not apply the guardrail themselves); `report.py` reads what a guardrail says
it did, from ApplyGuardrail or from a Converse trace, into a `GuardrailReport`: the policies that
intervened and the text units billed, never the text. Where a turn meets it is the turn core's
(`core/guardrail.py`). Nothing here imports botocore until a check needs it.
"""
