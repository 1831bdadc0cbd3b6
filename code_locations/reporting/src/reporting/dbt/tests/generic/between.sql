{#- Every non-null value of the column lies in [low, high]. -#}
{% test between(model, column_name, low, high) %}
SELECT {{ column_name }} FROM {{ model }}
 WHERE {{ column_name }} < {{ low }} OR {{ column_name }} > {{ high }}
{% endtest %}
